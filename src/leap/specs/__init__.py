"""What users write: template and preset files, the rules that match a recording to a
template, processing options, blank-record rules, metadata templates and their rendering,
thumbnails. Parsed and checked here; applied by services and the pipeline."""
