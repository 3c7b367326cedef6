"""`leap transcript show`, `leap topics show`, and `leap topics SELECTION` (the topics
stage's verb, which shares its noun with `topics show`)."""

from __future__ import annotations

from typing import Annotated

import typer
from typer import _click as click
from typer.core import TyperGroup

from leap.cli import pipeline_cmd
from leap.cli._filters import RecordingId
from leap.cli._output import terminal_safe
from leap.cli._run import state_of
from leap.errors import UsageError
from leap.services import outputs
from leap.text.subtitles import build_cues, to_srt, to_vtt
from leap.text.topics import hms

transcript_app = typer.Typer(help="Transcripts.", no_args_is_help=True)


class _VerbOrShow(TyperGroup):
    """`leap topics show ID` reads a recording's topics; anything else after `topics` is a
    SELECTION for the topics stage (`leap topics 1-9 --dry-run`), spelled like the other
    stage verbs (`leap trim 1-9`) rather than `leap topics run 1-9`, which works too."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


topics_app = typer.Typer(
    cls=_VerbOrShow,
    help="Themes, topics and chapters: find them (SELECTION), or show one recording's.",
    no_args_is_help=True,
)
topics_app.command("run")(pipeline_cmd.topics)

FORMATS = ("text", "srt", "vtt", "json")


@transcript_app.command("show")
def show_transcript(
    ctx: typer.Context,
    recording_id: RecordingId,
    fmt: Annotated[str, typer.Option("--format", help="text | srt | vtt | json")] = "text",
) -> None:
    """Print a recording's transcript (times from the start of the processed video)."""
    state = state_of(ctx)
    if state.as_json:
        fmt = "json"
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not '{fmt}'")
    with state.context() as c:
        tr = outputs.transcript(c, recording_id)
    if fmt == "json":
        state.output.json(tr.to_json())
    elif fmt == "srt":
        typer.echo(terminal_safe(to_srt(build_cues(tr))), nl=False)
    elif fmt == "vtt":
        typer.echo(terminal_safe(to_vtt(build_cues(tr))), nl=False)
    else:
        for seg in tr.segments:
            typer.echo(terminal_safe(f"[{hms(seg.start)}] {seg.text.strip()}"))


@topics_app.command("show")
def show_topics(ctx: typer.Context, recording_id: RecordingId) -> None:
    """Print a recording's main themes and its timestamped topics."""
    state = state_of(ctx)
    with state.context() as c:
        tp = outputs.topics(c, recording_id)
    if state.as_json:
        state.output.json(tp.to_json())
        return
    typer.echo(terminal_safe("Themes: " + ", ".join(tp.themes)))
    for t in tp.topics:
        typer.echo(terminal_safe(f"{hms(t.start)} — {t.title}"))
    if not tp.chapters_ok:
        state.output.warning(f"no YouTube chapters: {tp.chapters_reason}")
