"""Chaos tests: real leapd processes killed with SIGKILL at random moments while fake platforms
inject faults; at the end everything is published exactly once (docs/operations.md)."""
