from fedbandwidth.units import MB, MIB, format_bytes, to_mb, to_mib


def test_units_are_binary_and_decimal():
    assert MIB == 1_048_576 and MB == 1_000_000
    assert to_mib(56_270_848) == 56_270_848 / 1_048_576
    assert to_mb(56_270_848) == 56.270848


def test_format_bytes_is_exact_with_mib():
    assert format_bytes(56_270_848) == "56,270,848 B (53.66 MiB)"
    assert format_bytes(0) == "0 B (0.00 MiB)"
