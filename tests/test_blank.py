from __future__ import annotations

import pytest

from leap.specs.blank import MB, BlankThresholds, blank_reason

T = BlankThresholds()


@pytest.mark.parametrize(
    ("minutes", "mb", "expected"),
    [
        (60, 500, None),
        (20, 25, None),  # the limits themselves are kept
        (19.99, 500, "duration 20.0 min < 20 min"),
        (60, 24.9, "size 24.9 MB < 25 MB"),
        (5, 1, "duration 5.0 min < 20 min; size 1.0 MB < 25 MB"),
        (0, 0, "duration 0.0 min < 20 min; size 0.0 MB < 25 MB"),
    ],
)
def test_blank_reason(minutes: float, mb: float, expected: str | None) -> None:
    assert blank_reason(minutes * 60, int(mb * MB), T) == expected


def test_override_keeps_unset_limits() -> None:
    t = T.override(None, 5)
    assert t == BlankThresholds(20, 5)
    assert blank_reason(25 * 60, 6 * MB, t) is None
    assert blank_reason(25 * 60, 30 * MB, T.override(30, None)) == "duration 25.0 min < 30 min"


def test_zero_thresholds_disable_blank_detection() -> None:
    assert blank_reason(0, 0, BlankThresholds(0, 0)) is None
