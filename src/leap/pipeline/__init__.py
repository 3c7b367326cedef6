"""Pipeline stages (download, trim, transcribe, topics, subtitles, upload)."""
