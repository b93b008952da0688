"""Value codecs: fp16, bf16, and affine int8/int4/int2 quantization (per tensor or per block), in numpy, as levers."""

from __future__ import annotations

import numpy as np

from ..checks import ConfigError
from .stage import SEP, VALUES, Lever, Stage, untag


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
    """Affine quantization: (codes 0..2^bits-1 as uint8, flat, padded to whole bytes with copies of the last
    value; params float32 (blocks, 2) = scale, min). ceil(n / block) blocks share the codes equally, so the
    decoder finds their size from the codes and the blocks alone (dequantize)."""
    flat = np.ascontiguousarray(x, dtype=np.float32).ravel()
    whole = flat.size + -flat.size % (8 // bits if bits < 8 else 1)  # codes filling whole bytes
    blocks = -(-flat.size // max(block or flat.size, 1))
    size = max(-(-whole // max(blocks, 1)), 1)
    padded = np.pad(flat, (0, blocks * size - flat.size), mode="edge").reshape(blocks, size)
    low, high = padded.min(axis=1), padded.max(axis=1)
    scale = ((high - low) / (2**bits - 1)).astype(np.float32)
    scale[scale == 0] = 1.0  # constant block: any scale reproduces it exactly
    codes = np.rint((padded - low[:, None]) / scale[:, None]).clip(0, 2**bits - 1).astype(np.uint8)
    return codes.ravel()[:whole], np.stack([scale, low], axis=1).astype(np.float32)


def dequantize(codes: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Codes (flat, as quantize made them) and params (blocks, 2) -> float32 values, flat."""
    size = -(-codes.size // len(params)) if len(params) else 0
    padded = np.pad(codes.astype(np.float32), (0, len(params) * size - codes.size))
    values = padded.reshape(len(params), size) * params[:, :1] + params[:, 1:]
    return values.ravel()[: codes.size].astype(np.float32)


def pack_codes(codes: np.ndarray, bits: int) -> np.ndarray:
    """8 // `bits` codes of `bits` bits (4 or 2) per byte, the first in the lowest bits."""
    per = 8 // bits
    padded = np.pad(codes, (0, -codes.size % per)).reshape(-1, per).astype(np.uint8)
    return np.bitwise_or.reduce(padded << (bits * np.arange(per, dtype=np.uint8)), axis=1).astype(np.uint8)


def unpack_codes(packed: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of pack_codes; returns 8 // `bits` x len(packed) codes (the caller trims any padding)."""
    shifts = bits * np.arange(8 // bits, dtype=np.uint8)
    return ((packed[:, None] >> shifts) & (2**bits - 1)).astype(np.uint8).ravel()


class ValueLever(Lever):
    """A value codec: stores each float array (a tensor, sparse values, low-rank factors) in fewer bits."""

    order = VALUES

    def applies(self, key: str) -> bool:
        """Only keys that hold float values."""
        return is_data_key(key)


class Fp16(ValueLever):
    """``fp16``: IEEE half precision."""

    name = "fp16"

    def encode_tensor(self, stage: Stage, key: str, x: np.ndarray) -> dict[str, np.ndarray]:
        """The array as float16."""
        return {key + SEP + "f16": x.astype(np.float16)}

    def decode(self, parts: dict[str, np.ndarray], shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
        """float16 parts back to float32."""
        return untag(parts, ("f16",), (), lambda base, tag, x: x.astype(np.float32))


class Bf16(ValueLever):
    """``bf16``: the upper 16 bits of float32, rounded to nearest even."""

    name = "bf16"

    def encode_tensor(self, stage: Stage, key: str, x: np.ndarray) -> dict[str, np.ndarray]:
        """The array as bfloat16 bits."""
        return {key + SEP + "bf16": bf16_encode(x)}

    def decode(self, parts: dict[str, np.ndarray], shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
        """bfloat16 parts back to float32."""
        return untag(parts, ("bf16",), (), lambda base, tag, x: bf16_decode(x))


class Quantize(ValueLever):
    """``int8|int4|int2[:<block>]``: affine codes per tensor or per block; int4 packs two a byte, int2 four."""

    bits = 8  # bits per code

    def parse(self, args: list[str], where: str) -> Stage:
        """The optional block size (a whole number >= 2)."""
        if not args:
            return Stage(self)
        if len(args) > 1 or not args[0].isdigit() or int(args[0]) < 2:
            raise ConfigError(f"{where}: {self.name} block size must be a whole number >= 2, got {':'.join(args)!r}")
        return Stage(self, float(int(args[0])))

    def encode_tensor(self, stage: Stage, key: str, x: np.ndarray) -> dict[str, np.ndarray]:
        """Codes (int8: in the tensor's shape; int4, int2: packed, flat) and the blocks' (scale, min)."""
        codes, params = quantize(x, self.bits, int(stage.param) if stage.param else None)
        data = codes.reshape(x.shape) if self.bits == 8 else pack_codes(codes, self.bits)
        return {key + SEP + f"q{self.bits}": data, key + SEP + "qp": params}

    def decode(self, parts: dict[str, np.ndarray], shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
        """Codes and params back to float32 (int4, int2: flat, possibly padded by up to 1, 3 values)."""

        def values(base: str, tag: str, x: np.ndarray) -> np.ndarray:
            codes = x.ravel() if self.bits == 8 else unpack_codes(x, self.bits)
            return dequantize(codes, parts[base + SEP + "qp"]).reshape(x.shape if self.bits == 8 else -1)

        return untag(parts, (f"q{self.bits}",), ("qp",), values)


class Int8(Quantize):
    """``int8[:<block>]``: 256 levels."""

    name, bits = "int8", 8


class Int4(Quantize):
    """``int4[:<block>]``: 16 levels, two codes a byte."""

    name, bits = "int4", 4


class Int2(Quantize):
    """``int2[:<block>]``: 4 levels, four codes a byte (with error feedback, what a round drops comes back)."""

    name, bits = "int2", 2


LEVERS = (Fp16(), Bf16(), Int8(), Int4(), Int2())  # the value codecs, in the order chain.py lists them
