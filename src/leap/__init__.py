"""LEAP: recordings in, published videos out."""

import sys

# httpx's package imports its command-line client (httpx._main: click, pygments and
# rich.syntax) only to offer `httpx.main`, which LEAP never calls: 2.4 MB of RSS in every
# process that talks HTTP, leapd included (README, Benchmarks: bench_upload). httpx catches the
# ImportError a None entry raises and defines a stub instead. Only when httpx is not loaded
# yet: a process that already has its client keeps it.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

__version__ = "0.1.0"
