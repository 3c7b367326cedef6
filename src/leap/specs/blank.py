"""Blank records: a recording too short OR too small to be a real lecture. Pure."""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class BlankThresholds:
    min_duration_minutes: float = 20.0
    min_size_mb: float = 25.0

    def override(self, minutes: float | None, size_mb: float | None) -> BlankThresholds:
        return BlankThresholds(
            self.min_duration_minutes if minutes is None else minutes,
            self.min_size_mb if size_mb is None else size_mb,
        )


def blank_reason(duration_s: float, size_bytes: int, t: BlankThresholds) -> str | None:
    """Why a recording is blank, or None. Both limits are strict: exactly 20 min is kept."""
    reasons = []
    if duration_s < t.min_duration_minutes * 60:
        reasons.append(f"duration {duration_s / 60:.1f} min < {t.min_duration_minutes:g} min")
    if size_bytes < t.min_size_mb * MB:
        reasons.append(f"size {size_bytes / MB:.1f} MB < {t.min_size_mb:g} MB")
    return "; ".join(reasons) or None
