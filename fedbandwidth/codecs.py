"""Codecs that shrink what a federated message carries, in pure numpy.

A codec is a chain of stages written left to right with ``+``, e.g. ``delta+topk:0.01+int8``:

- ``delta``: send the update (local - global) instead of the weights (uplink only);
- ``layers:<glob>[,<glob>...]``: send only the tensors whose name matches (``-<glob>`` excludes);
- ``topk:<fraction>[:noef]`` / ``threshold:<tau>[:noef]``: keep the largest entries of the update;
  what is not sent is kept as a residual and added to the next update (error feedback) unless ``noef``;
- ``lowrank:<rank>[:noef]``: send each matrix of the update as two thin factors P (m x r) and Q (n x r)
  with P Q^T its best rank-r approximation (truncated SVD; Konecny et al. 2016, PowerSGD); vectors and
  matrices too small to gain are sent whole; error feedback as for top-k;
- ``fp16``, ``bf16``, ``int8[:<block>]``, ``int4[:<block>]``: store the values in fewer bits
  (affine quantization per tensor, or per block of ``block`` values; int4 packs two values a byte).

Encoding turns a dict of float32 arrays into a dict of arrays (what the ArrayRecord carries); every
byte the decoder needs is in it (scales, zero points, indices), except the tensor shapes, which
both sides know from the model. Keys are ``<tensor>#<part>``, e.g. ``lm_head.weight#val#q8``.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field

import numpy as np

from .config import ConfigError

SEP = "#"  # separates a tensor name from the part of its encoding
DELTA, LAYERS, SPARSIFY, VALUES = range(4)  # the order stages must come in
NO_ERROR_FEEDBACK = "noef"  # option of topk/threshold/lowrank: drop the residual instead of keeping it
UINT16_INDEX_LIMIT = 2**16  # tensors up to this many elements can index with uint16


@dataclass(frozen=True)
class Stage:
    """One step of a codec chain: its kind and its parsed parameters."""

    name: str  # "delta", "layers", "topk", "threshold", "lowrank", "fp16", "bf16", "int8" or "int4"
    param: float | None = None  # fraction (topk), tau (threshold), rank (lowrank) or block size (int8/int4)
    patterns: tuple[str, ...] = ()  # globs of `layers`; a leading "-" excludes
    error_feedback: bool = True  # topk/threshold/lowrank: keep what was not sent for the next round

    @property
    def order(self) -> int:
        """Position class: delta, then layers, then a sparsifier (or lowrank), then a value codec."""
        return {"delta": DELTA, "layers": LAYERS, "topk": SPARSIFY, "threshold": SPARSIFY,
                "lowrank": SPARSIFY}.get(self.name, VALUES)

    def __str__(self) -> str:
        if self.name == "layers":
            return f"layers:{','.join(self.patterns)}"
        text = self.name if self.param is None else f"{self.name}:{self.param:g}"
        return text if self.error_feedback else f"{text}:{NO_ERROR_FEEDBACK}"


@dataclass(frozen=True)
class Codec:
    """A chain of stages; the empty chain sends float32 weights unchanged."""

    stages: tuple[Stage, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        return "+".join(str(s) for s in self.stages) or "none"

    def stage(self, name_or_order) -> Stage | None:
        """The stage with this name (or order class), if the chain has one."""
        return next((s for s in self.stages if name_or_order in (s.name, s.order)), None)

    @property
    def sparsifier(self) -> Stage | None:
        """The topk/threshold/lowrank stage, if any: the one that drops part of the update."""
        return self.stage(SPARSIFY)

    def selects(self, name: str) -> bool:
        """True if the tensor `name` is sent (no `layers` stage, or it matches)."""
        layers = self.stage("layers")
        return layers is None or layer_selected(name, layers.patterns)


# ---------------------------------------------------------------- parsing

VALUE_CODECS = ("fp16", "bf16", "int8", "int4")
KNOWN = ("none", "delta", "layers", "topk", "threshold", "lowrank") + VALUE_CODECS


def _number(what: str, text: str, low: float, high: float, low_open: bool = True) -> float:
    """Parse a float in (low, high] (or [low, high]); raise ConfigError naming `what`."""
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{what} must be a number, got {text!r}") from None
    if not (value > low if low_open else value >= low) or value > high or math.isnan(value):
        raise ConfigError(f"{what} must lie in {'(' if low_open else '['}{low:g}, {high:g}], got {text}")
    return value


def _block(where: str, name: str, args: list[str]) -> float | None:
    """Parse the optional block size of int8/int4 (a whole number >= 2)."""
    if not args:
        return None
    if len(args) > 1 or not args[0].isdigit() or int(args[0]) < 2:
        raise ConfigError(f"{where}: {name} block size must be a whole number >= 2, got {':'.join(args)!r}")
    return float(int(args[0]))


def parse_stage(text: str, where: str = "codec") -> Stage:
    """Parse one stage such as 'topk:0.01' or 'int8:256'; raise ConfigError if malformed."""
    name, *args = text.strip().split(":")
    if name not in KNOWN or name == "none":
        raise ConfigError(f"{where}: unknown codec {name!r}; known: {', '.join(KNOWN)}")
    if name in ("delta", "fp16", "bf16") and args:
        raise ConfigError(f"{where}: {name} takes no parameter, got {text!r}")
    if name == "layers":
        patterns = tuple(p for p in ":".join(args).split(",") if p)
        if not patterns:
            raise ConfigError(f"{where}: layers needs a pattern, e.g. 'layers:-*embed_in*,-lm_head*'")
        return Stage(name, patterns=patterns)
    if name in ("topk", "threshold", "lowrank"):
        if not args or len(args) > 2 or (len(args) == 2 and args[1] != NO_ERROR_FEEDBACK):
            raise ConfigError(f"{where}: {name} needs a value and optionally ':noef', got {text!r}")
        if name == "lowrank" and (not args[0].isdigit() or int(args[0]) < 1):
            raise ConfigError(f"{where}: lowrank rank must be a whole number >= 1, got {args[0]!r}")
        value = (_number(f"{where}: topk fraction", args[0], 0, 1) if name == "topk"
                 else float(args[0]) if name == "lowrank"
                 else _number(f"{where}: threshold tau", args[0], 0, math.inf, low_open=False))
        return Stage(name, value, error_feedback=len(args) == 1)
    return Stage(name, _block(where, name, args) if name in ("int8", "int4") else None)


def check_order(stages: tuple[Stage, ...], where: str) -> None:
    """Stages must come in the order delta, layers, sparsifier, value codec, each at most once."""
    for before, after in zip(stages, stages[1:]):
        if after.order <= before.order:
            raise ConfigError(f"{where}: {after.name!r} cannot follow {before.name!r} "
                              "(order: delta, layers, topk|threshold|lowrank, fp16|bf16|int8|int4; each once)")
    sparsifier = next((s for s in stages if s.order == SPARSIFY), None)
    if sparsifier and not any(s.name == "delta" for s in stages):
        raise ConfigError(f"{where}: {sparsifier.name} needs 'delta' before it "
                          "(compress the update, not the weights)")


def parse_codec(text: str | None, where: str = "codec") -> Codec:
    """Parse a chain like 'delta+topk:0.01+int8' ('' or 'none': no compression)."""
    if text is None or text.strip() in ("", "none"):
        return Codec()
    stages = tuple(parse_stage(part, where) for part in text.split("+"))
    check_order(stages, where)
    return Codec(stages)


def check_downlink(codec: Codec, where: str = "down-codec") -> Codec:
    """Clients keep no previous global model, so the downlink can't send deltas or sparsify them."""
    for stage in codec.stages:
        if stage.order in (DELTA, SPARSIFY):
            raise ConfigError(f"{where}: {stage.name} applies to the uplink only "
                              "(a client holds no previous global model to add a delta to)")
    return codec


def check_layers(codec: Codec, names: list[str], where: str = "codec") -> Codec:
    """A `layers` stage must select at least one of the model's tensors."""
    if codec.stage("layers") and not any(codec.selects(n) for n in names):
        raise ConfigError(f"{where}: {codec.stage('layers')} selects none of the model's tensors")
    return codec


def layer_selected(name: str, patterns: tuple[str, ...]) -> bool:
    """True if `name` matches an including glob (all, if there are none) and no '-' glob."""
    includes = [p for p in patterns if not p.startswith("-")]
    excludes = [p[1:] for p in patterns if p.startswith("-")]
    included = not includes or any(fnmatch.fnmatchcase(name, p) for p in includes)
    return included and not any(fnmatch.fnmatchcase(name, p) for p in excludes)


# ---------------------------------------------------------------- value codecs

def is_data_key(key: str) -> bool:
    """True for keys holding float values a value codec may shrink: a tensor, sparse values, factors."""
    return SEP not in key or key.endswith((SEP + "val", SEP + "lrp", SEP + "lrq"))


def bf16_encode(x: np.ndarray) -> np.ndarray:
    """float32 -> the upper 16 bits of each value (bfloat16), rounded to nearest even."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = bits + 0x7FFF + ((bits >> 16) & 1)
    return (rounded >> 16).astype(np.uint16)


def bf16_decode(x: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16) -> float32."""
    return (x.astype(np.uint32) << 16).view(np.float32)


def quantize(x: np.ndarray, bits: int, block: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Affine quantization: (codes 0..2^bits-1 as uint8, flat; params float32 (blocks, 2) = scale, min)."""
    flat = np.ascontiguousarray(x, dtype=np.float32).ravel()
    size = max(block or flat.size, 1)
    blocks = -(-flat.size // size)
    padded = np.pad(flat, (0, blocks * size - flat.size), mode="edge").reshape(blocks, size)
    low, high = padded.min(axis=1), padded.max(axis=1)
    scale = ((high - low) / (2**bits - 1)).astype(np.float32)
    scale[scale == 0] = 1.0  # constant block: any scale reproduces it exactly
    codes = np.rint((padded - low[:, None]) / scale[:, None]).clip(0, 2**bits - 1).astype(np.uint8)
    return codes.ravel()[:flat.size], np.stack([scale, low], axis=1).astype(np.float32)


def dequantize(codes: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Codes (flat) and params (blocks, 2) -> float32 values, flat."""
    size = -(-codes.size // len(params)) if len(params) else 0
    padded = np.pad(codes.astype(np.float32), (0, len(params) * size - codes.size))
    values = padded.reshape(len(params), size) * params[:, :1] + params[:, 1:]
    return values.ravel()[:codes.size].astype(np.float32)


def pack_nibbles(codes: np.ndarray) -> np.ndarray:
    """Two 4-bit codes per byte: even positions in the low nibble, odd in the high one."""
    even = np.pad(codes, (0, codes.size % 2))
    return (even[0::2] | (even[1::2] << 4)).astype(np.uint8)


def unpack_nibbles(packed: np.ndarray) -> np.ndarray:
    """Inverse of pack_nibbles; returns 2 x len(packed) codes (the caller trims any padding)."""
    out = np.empty(packed.size * 2, dtype=np.uint8)
    out[0::2], out[1::2] = packed & 0x0F, packed >> 4
    return out


def encode_values(stage: Stage, key: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """Encode one float32 array with fp16/bf16/int8/int4."""
    if stage.name == "fp16":
        return {key + SEP + "f16": x.astype(np.float16)}
    if stage.name == "bf16":
        return {key + SEP + "bf16": bf16_encode(x)}
    bits = 8 if stage.name == "int8" else 4
    codes, params = quantize(x, bits, int(stage.param) if stage.param else None)
    data = codes.reshape(x.shape) if bits == 8 else pack_nibbles(codes)
    return {key + SEP + f"q{bits}": data, key + SEP + "qp": params}


def decode_values(parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Undo encode_values on a whole record; other keys pass through. int4 output is flat, padded."""
    out = {}
    for key, x in parts.items():
        base, _, tag = key.rpartition(SEP)
        if tag == "f16":
            out[base] = x.astype(np.float32)
        elif tag == "bf16":
            out[base] = bf16_decode(x)
        elif tag in ("q8", "q4"):
            codes = x.ravel() if tag == "q8" else unpack_nibbles(x)
            out[base] = dequantize(codes, parts[base + SEP + "qp"]).reshape(x.shape if tag == "q8" else -1)
        elif tag != "qp":
            out[key] = x
    return out


# ---------------------------------------------------------------- sparsification

def topk_indices(x: np.ndarray, fraction: float) -> np.ndarray:
    """Ascending flat indices of the ceil(fraction x size) entries of largest magnitude."""
    flat = x.ravel()
    k = min(flat.size, max(1, math.ceil(fraction * flat.size)))
    if k == flat.size:
        return np.arange(flat.size)
    return np.sort(np.argpartition(np.abs(flat), flat.size - k)[flat.size - k:])


def threshold_indices(x: np.ndarray, tau: float) -> np.ndarray:
    """Ascending flat indices of the entries with magnitude >= tau."""
    return np.flatnonzero(np.abs(x.ravel()) >= tau)


def index_part(indices: np.ndarray, size: int) -> tuple[str, np.ndarray]:
    """The cheapest honest form of sorted indices: uint16, int32, or a bitmap when denser."""
    options = [("bit", math.ceil(size / 8)), ("idx32", 4 * indices.size)]
    if size <= UINT16_INDEX_LIMIT:
        options.append(("idx16", 2 * indices.size))
    form = min(options, key=lambda o: o[1])[0]
    if form == "bit":
        mask = np.zeros(size, dtype=bool)
        mask[indices] = True
        return "bit", np.packbits(mask)
    return "idx", indices.astype(np.uint16 if form == "idx16" else np.int32)


def sparse_encode(stage: Stage, key: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """Keep the chosen entries of one tensor: their indices (or bitmap) and float32 values."""
    pick = topk_indices(x, stage.param) if stage.name == "topk" else threshold_indices(x, stage.param)
    form, index = index_part(pick, x.size)
    return {key + SEP + form: index, key + SEP + "val": x.ravel()[pick].astype(np.float32)}


def sparse_decode(parts: dict[str, np.ndarray], shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
    """Scatter sparse values back into dense tensors of the known shapes; other keys pass through."""
    out = {}
    for key, x in parts.items():
        base, _, tag = key.rpartition(SEP)
        if tag in ("idx", "bit"):
            size = int(np.prod(shapes[base], dtype=np.int64))
            pick = x.astype(np.int64) if tag == "idx" else np.flatnonzero(np.unpackbits(x)[:size])
            dense = np.zeros(size, dtype=np.float32)
            dense[pick] = parts[base + SEP + "val"].ravel()[:pick.size]
            out[base] = dense.reshape(shapes[base])
        elif tag != "val":
            out[key] = x
    return out


# ---------------------------------------------------------------- low rank

def lowrank_pays(shape: tuple, rank: int) -> bool:
    """True if a matrix of this shape costs fewer values as rank-`rank` factors than whole."""
    return len(shape) == 2 and rank * (shape[0] + shape[1]) < shape[0] * shape[1]


def top_factors(x: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """P (m x r), Q (n x r) with P Q^T = the best rank-r approximation of x (its truncated SVD).

    Via the small side's Gram matrix in float64 (for pythia's 50,304 x 128 embeddings: one 128 x 128
    eigenproblem, ~20x faster than a full SVD): x^T x = V S^2 V^T, so x V_r V_r^T = U_r S_r V_r^T.
    """
    tall = x.shape[0] >= x.shape[1]
    a = (x if tall else x.T).astype(np.float64)
    _, vecs = np.linalg.eigh(a.T @ a)  # eigenvalues ascending
    v = vecs[:, ::-1][:, :rank]
    av = a @ v
    p, q = (av, v) if tall else (v, av)
    return p.astype(np.float32), q.astype(np.float32)


def lowrank_encode(stage: Stage, key: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """A matrix as factors P = U_r S_r (m x r) and Q = V_r (n x r), its best rank-r approximation."""
    rank = int(stage.param)
    if not lowrank_pays(x.shape, rank):
        return {key: x}
    p, q = top_factors(x, rank)
    return {key + SEP + "lrp": p, key + SEP + "lrq": q}


def lowrank_decode(parts: dict[str, np.ndarray], shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
    """Multiply factors back into matrices of the known shapes; other keys pass through."""
    out = {}
    for key, x in parts.items():
        base, _, tag = key.rpartition(SEP)
        if tag == "lrp":
            rows, cols = shapes[base]
            rank = x.size // rows  # int4 may have padded one value
            p = x.ravel()[:rows * rank].reshape(rows, rank)
            q = parts[base + SEP + "lrq"].ravel()[:cols * rank].reshape(cols, rank)
            out[base] = p @ q.T
        elif tag != "lrq":
            out[key] = x
    return out


# ---------------------------------------------------------------- the chain

def restore_shape(x: np.ndarray, shape: tuple) -> np.ndarray:
    """A decoded (possibly flat, possibly padded) array in its tensor's shape."""
    return x.ravel()[:int(np.prod(shape, dtype=np.int64))].reshape(shape)


def encode_stages(stages, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Apply the layers/sparsifier/value stages in order (delta is applied by the caller)."""
    out = dict(arrays)
    for stage in stages:
        if stage.name == "layers":
            out = {k: v for k, v in out.items() if layer_selected(k, stage.patterns)}
        elif stage.name == "lowrank":
            out = {p: a for k, v in out.items() for p, a in lowrank_encode(stage, k, v).items()}
        elif stage.order == SPARSIFY:
            out = {p: a for k, v in out.items() for p, a in sparse_encode(stage, k, v).items()}
        elif stage.order == VALUES:
            out = {p: a for k, v in out.items()
                   for p, a in (encode_values(stage, k, v) if is_data_key(k) else {k: v}).items()}
    return out


def decode_parts(parts: dict[str, np.ndarray], shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
    """Undo the value and sparse stages: dense float32 tensors of the known shapes (sent ones only)."""
    dense = lowrank_decode(sparse_decode(decode_values(parts), shapes), shapes)
    return {k: restore_shape(v, shapes[k]).astype(np.float32, copy=False) for k, v in dense.items()}


@dataclass
class Encoded:
    """What encoding produced: the arrays to send and the residual to keep (error feedback)."""

    arrays: dict[str, np.ndarray]  # key -> array, what the ArrayRecord carries
    residual: dict[str, np.ndarray]  # tensor -> what was not sent this time (empty without feedback)


def encode(codec: Codec, arrays: dict[str, np.ndarray], reference: dict[str, np.ndarray] | None = None,
           residual: dict[str, np.ndarray] | None = None) -> Encoded:
    """Encode named float32 tensors; `reference` is the global model (delta), `residual` the last one."""
    values = {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}
    if codec.stage("delta"):
        if reference is None:
            raise ValueError("delta needs the reference (global) model")
        values = {k: v - reference[k] for k, v in values.items() if k in reference}
    sparsifier = codec.sparsifier
    if sparsifier is None or not sparsifier.error_feedback:
        return Encoded(encode_stages(codec.stages, values), {})
    values = {k: v for k, v in values.items() if codec.selects(k)}
    update = {k: v + residual[k] if residual and k in residual else v for k, v in values.items()}
    sent = encode_stages(codec.stages, update)
    received = decode_parts(sent, {k: v.shape for k, v in update.items()})
    return Encoded(sent, {k: v - received[k] for k, v in update.items()})


def decode(codec: Codec, parts: dict[str, np.ndarray], shapes: dict[str, tuple],
           reference: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Decode to float32 weights; tensors not sent are taken from `reference` if given, else left out."""
    tensors = decode_parts(parts, shapes)
    if codec.stage("delta"):
        if reference is None:
            raise ValueError("delta needs the reference (global) model")
        tensors = {k: reference[k] + v for k, v in tensors.items()}
    if reference is not None:
        tensors = {k: tensors.get(k, reference[k]) for k in reference}
    return tensors


def payload_bytes(arrays: dict[str, np.ndarray]) -> int:
    """Bytes these arrays count as an ArrayRecord: .npy data (header + raw) plus key length."""
    from .payload import npy_header_length

    return sum(npy_header_length(a.shape, a.dtype.str) + a.nbytes + len(k) for k, a in arrays.items())
