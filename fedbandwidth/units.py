"""Byte units, in one place: bytes are ints, MiB = 2**20 bytes, MB = 10**6 bytes."""

MIB = 2**20  # mebibyte, what `ls -lh` and most OS tools call "M"
MB = 10**6  # megabyte, what network links and disk vendors count in
GIB = 2**30  # gibibyte, how memory is sold and shown


def to_mib(num_bytes: int) -> float:
    """Convert bytes to MiB (2**20 bytes)."""
    return num_bytes / MIB


def to_mb(num_bytes: int) -> float:
    """Convert bytes to MB (10**6 bytes)."""
    return num_bytes / MB


def to_gib(num_bytes: int) -> float:
    """Convert bytes to GiB (2**30 bytes)."""
    return num_bytes / GIB


def format_bytes(num_bytes: int) -> str:
    """Render an exact byte count with its MiB value, e.g. '56,270,848 B (53.66 MiB)'."""
    return f"{num_bytes:,} B ({to_mib(num_bytes):,.2f} MiB)"
