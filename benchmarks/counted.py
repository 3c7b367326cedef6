"""`python -m benchmarks.counted ARGS`: run `leap ARGS` in this process, counting the SQL
statements it sends; the count goes to the file named by BENCH_COUNT_FILE. The benchmarks
run every measured command this way, as a fresh process, as a user would."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


def main(args: list[str]) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from leap.cli.app import main as leap_main

    count = [0]

    def seen(*_a: Any) -> None:
        count[0] += 1

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        leap_main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:
        code = 0
    Path(os.environ["BENCH_COUNT_FILE"]).write_text(str(count[0]))
    sys.exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
