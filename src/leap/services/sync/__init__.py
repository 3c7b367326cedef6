"""Sync: sources (a local folder, Zoom) in, recordings out, exactly once. `engine` runs a
sync page by page; `local` and `zoom` turn a source into pages of `item.SourceItem`s given a
`item.SyncDeps`; `result` is what one source's sync did."""

from leap.services.sync.engine import Syncer, SyncRequest, overall, upsert_page
from leap.services.sync.result import Skip, SyncResult

__all__ = ["Skip", "SyncRequest", "SyncResult", "Syncer", "overall", "upsert_page"]
