"""`python -m leap.daemon` = `leapd`."""

from leap.daemon.main import main

main()
