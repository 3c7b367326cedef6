"""What is said in a recording, as text: the transcript model, WebVTT and subtitles, the
silence filter, and topics and chapters (by an LLM or offline). Pure or provider-agnostic:
no database, no stage."""
