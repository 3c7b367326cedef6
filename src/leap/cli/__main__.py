"""`python -m leap.cli` = `leap` (tests run it this way to use the same interpreter)."""

from leap.cli.app import main

main()
