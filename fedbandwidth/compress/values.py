"""Value codecs: fp16, bf16, and affine int8/int4 quantization (per tensor or per block), in numpy."""

from __future__ import annotations

import numpy as np

from .chain import SEP, Stage


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
    return codes.ravel()[: flat.size], np.stack([scale, low], axis=1).astype(np.float32)


def dequantize(codes: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Codes (flat) and params (blocks, 2) -> float32 values, flat."""
    size = -(-codes.size // len(params)) if len(params) else 0
    padded = np.pad(codes.astype(np.float32), (0, len(params) * size - codes.size))
    values = padded.reshape(len(params), size) * params[:, :1] + params[:, 1:]
    return values.ravel()[: codes.size].astype(np.float32)


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
