"""Codecs in pure numpy: round-trip error bounds, exact payload sizes, error feedback, parsing."""

import math

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord

from fedbandwidth.checks import ConfigError
from fedbandwidth.compress.chain import Codec, check_downlink, check_layers, parse_codec
from fedbandwidth.compress.encoding import decode, encode, payload_bytes
from fedbandwidth.compress.sparse import topk_indices
from fedbandwidth.compress.values import bf16_encode, dequantize, pack_codes, quantize, unpack_codes

HEADER = 128  # bytes of a .npy v1.0 header for every array used here


def tensors(seed=0):
    """Three float32 tensors of awkward sizes: 2-D, odd 1-D, large 2-D (70,000 elements)."""
    rng = np.random.default_rng(seed)
    return {
        "a.weight": rng.standard_normal((300, 7)).astype(np.float32),
        "b": rng.standard_normal(9).astype(np.float32),
        "big": rng.standard_normal((200, 350)).astype(np.float32),
    }


def shapes_of(arrays):
    return {k: v.shape for k, v in arrays.items()}


def record_bytes(arrays):
    """What Flower counts for these arrays: ArrayRecord.count_bytes()."""
    return ArrayRecord({k: Array(v) for k, v in arrays.items()}).count_bytes()


def roundtrip(text, arrays, reference=None, residual=None):
    codec = parse_codec(text)
    enc = encode(codec, arrays, reference, residual)
    return enc, decode(codec, enc.arrays, shapes_of(arrays), reference)


def test_fp16_relative_error_at_most_1e_3():
    arrays = tensors()
    _, out = roundtrip("fp16", arrays)
    for k, x in arrays.items():
        normal = np.abs(x) >= np.finfo(np.float16).tiny  # below 2^-14 fp16 is subnormal: absolute bound
        error = np.abs(out[k] - x)
        assert np.all(error[normal] <= 1e-3 * np.abs(x[normal]))
        assert np.all(error[~normal] <= 2.0**-25)


def test_bf16_relative_error_at_most_2_to_minus_8():
    arrays = tensors()
    _, out = roundtrip("bf16", arrays)
    for k, x in arrays.items():
        assert np.all(np.abs(out[k] - x) <= 2**-8 * np.abs(x))
    assert bf16_encode(np.array([1.0, -2.0], np.float32)).tolist() == [0x3F80, 0xC000]


@pytest.mark.parametrize(
    "text,bits", [("int8", 8), ("int8:64", 8), ("int4", 4), ("int4:32", 4), ("int2", 2), ("int2:64", 2)]
)
def test_quantization_error_at_most_half_a_step(text, bits):
    arrays = tensors()
    _, out = roundtrip(text, arrays)
    block = int(text.split(":")[1]) if ":" in text else None
    for k, x in arrays.items():
        flat = x.ravel()
        size = block or flat.size
        for start in range(0, flat.size, size):
            chunk = flat[start : start + size]
            step = (chunk.max() - chunk.min()) / (2**bits - 1)
            error = np.abs(out[k].ravel()[start : start + size] - chunk)
            assert error.max() <= step / 2 * (1 + 1e-5) + 1e-7


def test_constant_tensor_quantizes_exactly():
    x = {"c": np.full((4, 4), 0.25, np.float32)}
    _, out = roundtrip("int4", x)
    assert np.array_equal(out["c"], x["c"])


def test_int4_packs_two_values_a_byte_and_int2_four():
    codes = np.array([1, 15, 0, 7, 9], np.uint8)
    packed = pack_codes(codes, 4)
    assert packed.tolist() == [1 | 15 << 4, 0 | 7 << 4, 9]
    assert unpack_codes(packed, 4)[:5].tolist() == codes.tolist()
    codes = np.array([3, 0, 1, 2, 2], np.uint8)
    packed = pack_codes(codes, 2)
    assert packed.tolist() == [3 | 0 << 2 | 1 << 4 | 2 << 6, 2]
    assert unpack_codes(packed, 2).tolist() == [3, 0, 1, 2, 2, 0, 0, 0]
    codes, params = quantize(np.arange(10, dtype=np.float32), 4, block=4)
    assert params.shape == (3, 2) and codes.max() == 15


def test_blocks_of_a_tensor_not_a_multiple_of_the_block_decode_within_half_a_step():
    # 100 values in blocks of 64: 2 blocks of 50 (the decoder finds the size from the codes and the blocks);
    # with a last block of 36 the decoder took 50 for 64 and was off by up to 0.84 of a range of 2
    x = np.linspace(-1, 1, 100, dtype=np.float32)
    for bits in (8, 4, 2):
        codes, params = quantize(x, bits, block=64)
        assert len(params) == 2
        step = max((x[:50].max() - x[:50].min()), (x[50:].max() - x[50:].min())) / (2**bits - 1)
        assert np.abs(dequantize(codes, params)[:100] - x).max() <= step / 2 * (1 + 1e-5)


def test_exact_payload_sizes_of_each_codec():
    arrays = tensors()  # 2,100 + 9 + 70,000 elements; keys 8 + 1 + 3 characters
    n, keys = {"a.weight": 2100, "b": 9, "big": 70000}, {"a.weight": 8, "b": 1, "big": 3}
    expected = {
        "none": sum(HEADER + 4 * n[k] + keys[k] for k in n),
        "fp16": sum(HEADER + 2 * n[k] + keys[k] + 4 for k in n),  # key + "#f16"
        "bf16": sum(HEADER + 2 * n[k] + keys[k] + 5 for k in n),
        "int8": sum(HEADER + n[k] + keys[k] + 3 + HEADER + 8 + keys[k] + 3 for k in n),  # q8 + (1, 2) params
        "int4": sum(HEADER + math.ceil(n[k] / 2) + keys[k] + 3 + HEADER + 8 + keys[k] + 3 for k in n),
        "int2": sum(HEADER + math.ceil(n[k] / 4) + keys[k] + 3 + HEADER + 8 + keys[k] + 3 for k in n),
        "int8:1000": sum(HEADER + n[k] + keys[k] + 3 + HEADER + 8 * math.ceil(n[k] / 1000) + keys[k] + 3 for k in n),
    }
    for text, size in expected.items():
        enc = encode(parse_codec(text), arrays)
        assert payload_bytes(enc.arrays) == record_bytes(enc.arrays) == size, text


def test_topk_payload_picks_cheapest_index_form():
    arrays = tensors()
    enc = encode(parse_codec("delta+topk:0.01"), arrays, {k: np.zeros_like(v) for k, v in arrays.items()})
    # a.weight: k=21 -> uint16 (42 B) beats bitmap (263 B); b: k=1 -> uint16 2 B vs bitmap 2 B (bitmap, first)
    # big: 70,000 > 65,536 so no uint16; k=700 -> int32 2,800 B beats bitmap 8,750 B
    assert enc.arrays["a.weight#idx"].dtype == np.uint16 and enc.arrays["a.weight#idx"].size == 21
    assert enc.arrays["b#bit"].dtype == np.uint8 and enc.arrays["b#bit"].size == 2
    assert enc.arrays["big#idx"].dtype == np.int32 and enc.arrays["big#idx"].size == 700
    size = (
        (HEADER + 42 + 12)
        + (HEADER + 84 + 12)
        + (HEADER + 2 + 5)
        + (HEADER + 4 + 5)
        + (HEADER + 2800 + 7)
        + (HEADER + 2800 + 7)
    )
    assert payload_bytes(enc.arrays) == record_bytes(enc.arrays) == size
    dense = encode(parse_codec("delta+topk:0.5"), arrays, {k: np.zeros_like(v) for k, v in arrays.items()})
    assert dense.arrays["big#bit"].size == 8750  # 35,000 indices: the bitmap is cheaper


def test_topk_keeps_exactly_the_k_largest_magnitudes():
    x = np.random.default_rng(1).standard_normal(1000).astype(np.float32)
    kept = topk_indices(x, 0.05)
    assert kept.size == 50 and np.all(np.diff(kept) > 0)
    assert set(kept) == set(np.argsort(-np.abs(x))[:50])
    enc, out = roundtrip("delta+topk:0.05:noef", {"x": x}, {"x": np.zeros_like(x)})
    assert np.count_nonzero(out["x"]) == 50
    assert np.array_equal(out["x"][kept], x[kept])


def test_threshold_keeps_entries_at_or_above_tau():
    x = np.array([0.5, -0.2, 0.1, -0.7, 0.0], np.float32)
    _, out = roundtrip("delta+threshold:0.2:noef", {"x": x}, {"x": np.zeros_like(x)})
    assert out["x"].tolist() == pytest.approx([0.5, -0.2, 0.0, -0.7, 0.0])
    _, none = roundtrip("delta+threshold:9:noef", {"x": x}, {"x": np.zeros_like(x)})
    assert not none["x"].any()


def test_lowrank_payload_is_two_thin_factors_and_small_tensors_whole():
    arrays = tensors()  # a.weight 300x7: rank 4 costs 4 x 307 = 1,228 values < 2,100; big 200x350
    enc = encode(parse_codec("delta+lowrank:4"), arrays, {k: np.zeros_like(v) for k, v in arrays.items()})
    assert {k: v.shape for k, v in enc.arrays.items()} == {
        "a.weight#lrp": (300, 4),
        "a.weight#lrq": (7, 4),
        "b": (9,),
        "big#lrp": (200, 4),
        "big#lrq": (350, 4),
    }
    size = (
        (HEADER + 4 * 1200 + 12)
        + (HEADER + 4 * 28 + 12)
        + (HEADER + 36 + 1)
        + (HEADER + 4 * 800 + 7)
        + (HEADER + 4 * 1400 + 7)
    )
    assert payload_bytes(enc.arrays) == record_bytes(enc.arrays) == size
    zeros = {k: np.zeros_like(v) for k, v in arrays.items()}
    assert "a.weight#lrp" in encode(parse_codec("delta+lowrank:6"), arrays, zeros).arrays  # 1,842 < 2,100
    assert "a.weight" in encode(parse_codec("delta+lowrank:7"), arrays, zeros).arrays  # 2,149 values: whole


def test_lowrank_is_the_best_rank_r_approximation():
    rng = np.random.default_rng(2)
    exact = (rng.standard_normal((120, 3)) @ rng.standard_normal((3, 80))).astype(np.float32)
    _, out = roundtrip("delta+lowrank:3:noef", {"m": exact}, {"m": np.zeros_like(exact)})
    np.testing.assert_allclose(out["m"], exact, atol=1e-4)  # a rank-3 matrix comes back whole
    noisy = rng.standard_normal((120, 80)).astype(np.float32)
    _, out = roundtrip("delta+lowrank:5:noef", {"m": noisy}, {"m": np.zeros_like(noisy)})
    tail = np.linalg.svd(noisy, compute_uv=False)[5:]
    assert np.linalg.norm(out["m"] - noisy) == pytest.approx(np.sqrt((tail**2).sum()), rel=1e-4)  # Eckart-Young
    assert np.linalg.matrix_rank(out["m"], tol=1e-3) == 5


@pytest.mark.parametrize(
    "text",
    [
        "delta+topk:0.01",
        "delta+topk:0.1+int8",
        "delta+threshold:0.5+int4",
        "delta+layers:-big+topk:0.05+fp16",
        "delta+lowrank:2",
        "delta+lowrank:3+int4",
    ],
)
def test_error_feedback_residual_plus_sent_is_the_update(text):
    local, glob = tensors(0), tensors(1)
    previous = {k: np.full_like(v, 0.01) for k, v in local.items()}
    codec = parse_codec(text)
    enc = encode(codec, local, glob, previous)
    sent = decode(codec, enc.arrays, shapes_of(local), {k: np.zeros_like(v) for k, v in glob.items()})
    for k in enc.residual:  # `sent` is the decoded delta (reference zero)
        update = local[k] - glob[k] + previous[k]
        np.testing.assert_allclose(enc.residual[k] + sent[k], update, atol=1e-6)
    assert set(enc.residual) == {k for k in local if codec.selects(k)}
    assert not encode(
        parse_codec(
            text.replace("+int", ":noef+int")
            if "+int" in text
            else text.replace("+fp16", ":noef+fp16")
            if "fp16" in text
            else text + ":noef"
        ),
        local,
        glob,
    ).residual


def test_delta_and_layers_fill_from_the_reference():
    local, glob = tensors(0), tensors(1)
    _, out = roundtrip("delta", local, glob)
    for k in local:
        np.testing.assert_allclose(out[k], local[k], atol=1e-6)
    enc, out = roundtrip("layers:-big,-b", local, glob)
    assert list(enc.arrays) == ["a.weight"]
    assert np.array_equal(out["a.weight"], local["a.weight"]) and np.array_equal(out["big"], glob["big"])
    client_side = decode(parse_codec("layers:-big,-b"), enc.arrays, shapes_of(local))
    assert list(client_side) == ["a.weight"]  # no reference: tensors not sent are left out


@pytest.mark.parametrize(
    "text,needle",
    [
        ("zip", "unknown codec 'zip'"),
        ("int3", "unknown codec 'int3'"),
        ("topk:0", "topk fraction must lie in (0, 1], got 0"),
        ("delta+topk:1.5", "topk fraction must lie in (0, 1], got 1.5"),
        ("delta+topk:abc", "topk fraction must be a number, got 'abc'"),
        ("delta+topk", "topk needs a value"),
        ("delta+topk:0.1:ef", "topk needs a value and optionally ':noef'"),
        ("delta+threshold:-1", "threshold tau must lie in [0, inf], got -1"),
        ("topk:0.01", "topk needs 'delta' before it"),
        ("int8+delta", "'delta' cannot follow 'int8'"),
        ("int8+fp16", "'fp16' cannot follow 'int8'"),
        ("int8:1", "int8 block size must be a whole number >= 2"),
        ("fp16:2", "fp16 takes no parameter"),
        ("layers:", "layers needs a pattern"),
        ("delta+lowrank:0", "lowrank rank must be a whole number >= 1, got '0'"),
        ("delta+lowrank:1.5", "lowrank rank must be a whole number >= 1, got '1.5'"),
        ("lowrank:4", "lowrank needs 'delta' before it"),
        ("delta+lowrank:4+topk:0.1", "'topk' cannot follow 'lowrank'"),
    ],
)
def test_malformed_codecs_raise_config_error(text, needle):
    with pytest.raises(ConfigError, match=None) as err:
        parse_codec(text, where="up-codec")
    assert needle in str(err.value) and str(err.value).startswith("up-codec: ")


def test_parse_and_print_round_trip():
    assert parse_codec(None) == parse_codec("none") == Codec()
    for text in [
        "delta+layers:-*embed_in*,-lm_head*+topk:0.01+int8",
        "int4:64",
        "delta+threshold:0.001:noef+bf16",
        "delta+lowrank:4+int8",
    ]:
        assert str(parse_codec(text)) == text
    assert check_downlink(parse_codec("delta+lowrank:4+int8")) == parse_codec("delta+lowrank:4+int8")
    with pytest.raises(ConfigError, match="topk:noef means nothing on the downlink"):
        check_downlink(parse_codec("delta+topk:0.1:noef"))
    with pytest.raises(ConfigError, match="selects none"):
        check_layers(parse_codec("layers:nothing*"), ["a", "b"])


def test_one_registry_names_every_lever_in_chain_order():
    from fedbandwidth.compress.chain import KNOWN, LEVERS, order_text

    levers = ("delta", "layers", "topk", "threshold", "lowrank", "dgc", "fp16", "bf16", "int8", "int4", "int2")
    assert KNOWN == ("none", *levers)
    assert order_text() == "delta, layers, topk|threshold|lowrank|dgc, fp16|bf16|int8|int4|int2"
    assert [lever.order for lever in LEVERS] == sorted(lever.order for lever in LEVERS)
    for lever in LEVERS:  # each stage knows its lever, and prints as it parses
        text = {"layers": "layers:a*", "topk": "topk:0.5", "threshold": "threshold:0.1", "lowrank": "lowrank:2"}
        text["dgc"] = "dgc:0.001:0.9"
        stage = parse_codec(("delta+" if lever.needs_delta else "") + text.get(lever.name, lever.name)).stages[-1]
        assert stage.lever is lever and str(stage) == text.get(lever.name, lever.name)


def test_untag_decodes_its_own_parts_and_drops_only_their_helpers():
    from fedbandwidth.compress.stage import untag

    parts = {"a#q8": np.array([1]), "a#qp": np.array([2]), "b#q4": np.array([3]), "b#qp": np.array([4]), "c": 5}
    out = untag(parts, ("q8",), ("qp",), lambda base, tag, x: (base, tag, int(x[0])))
    assert out == {"b#q4": parts["b#q4"], "b#qp": parts["b#qp"], "c": 5, "a": ("a", "q8", 1)}
