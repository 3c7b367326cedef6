"""Per-recording directories: media/user_{id}/recordings/{recording_id}/. Files are written
under a temporary name and renamed into place only when complete."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def for_recording(cls, media_dir: Path, user_id: int, recording_id: int) -> Workspace:
        return cls(media_dir / f"user_{user_id}" / "recordings" / str(recording_id))

    def ensure(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.root

    def path(self, name: str) -> Path:
        return self.ensure() / name

    @staticmethod
    def temp_for(final: Path) -> Path:
        # Same directory, so os.replace is an atomic rename on one filesystem. The suffix
        # is kept so ffmpeg still infers the container from it.
        return final.with_name(f".tmp-{final.stem}{final.suffix}")

    @staticmethod
    def commit(temp: Path, final: Path) -> Path:
        with temp.open("rb+") as fh:
            os.fsync(fh.fileno())
        temp.replace(final)
        return final

    def remove(self, names: list[str]) -> int:
        freed = 0
        for name in names:
            p = self.root / name
            if p.is_file():
                freed += p.stat().st_size
                p.unlink()
        return freed

    def delete(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
