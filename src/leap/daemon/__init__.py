"""`leapd`: the Huey consumer and the APScheduler automation in one process."""
