"""Media tools that know nothing of stages: ffmpeg and ffprobe (found, run, parsed), the
operations built on them (cut, extract audio, detect silence) and the pure trim planner."""
