"""`leap`: one Typer sub-app per noun; `_run` opens contexts and maps errors to exit codes."""
