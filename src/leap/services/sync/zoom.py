"""Zoom as a source: a client built from the source's credential (services/clients.py), and
meetings turned into SourceItems; a meeting that cannot be turned into one, or that Zoom
described too poorly, is skipped with its reason."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date

from leap.db.models import InputSource
from leap.errors import UsageError
from leap.providers.http import ProviderError
from leap.providers.zoom import (
    ZoomClient,
    ZoomMeeting,
)
from leap.services.clients import make_zoom_client
from leap.services.sync.item import SourceItem, SyncDeps
from leap.services.sync.result import SyncResult

log = logging.getLogger(__name__)


def meeting_item(m: ZoomMeeting, host: str | None) -> SourceItem:
    return SourceItem(
        # The UUID identifies one occurrence; the numeric id is shared by a recurring series.
        external_id=m.uuid,
        title=m.topic,
        start_time=m.start_time,
        duration_s=float(m.duration_min * 60),
        size_bytes=m.total_size or sum(f.file_size or 0 for f in m.files),
        host=m.host_email or host,
        meeting_id=m.meeting_id,
        files=tuple(f.to_dict() for f in m.files),
    )


class _HostLookup:
    """The host's e-mail for meetings that do not name one: optional, asked for once. An app
    without the user scope (only recordings granted, a common set-up) syncs without it."""

    def __init__(self, client: ZoomClient, user: str, result: SyncResult) -> None:
        self._client = client
        self.user = user
        self._result = result
        self._asked = "@" in user
        self.email: str | None = user if self._asked else None

    def __call__(self) -> str | None:
        if not self._asked:
            self._asked = True
            try:
                self.email = str(self._client.get_user(self.user).get("email") or "") or None
            except ProviderError as exc:
                # CredentialRejected is no ProviderError: a dead credential still stops sync.
                self._result.warnings.append(
                    f"host e-mail left empty: the Zoom user lookup failed ({exc.message})"
                )
                log.warning("zoom: host e-mail lookup failed, syncing without it: %s", exc)
        return self.email


def zoom_pages(
    deps: SyncDeps, src: InputSource, start: date, end: date, result: SyncResult
) -> Iterator[list[SourceItem]]:
    if src.credential_id is None:
        raise UsageError(f"zoom source '{src.name}' has no credential")
    client = make_zoom_client(deps.runtime, deps.scope, src.credential_id, deps.http, deps.sleep)
    host = _HostLookup(client, str(src.config.get("zoom_user") or "me"), result)
    reported = 0
    try:
        for page in client.iter_recording_pages(host.user, start, end):
            reported = _report_skips(client, result, reported)
            email = host() if not all(m.host_email for m in page) else host.email
            items: list[SourceItem] = []
            for m in page:
                try:
                    items.append(meeting_item(m, email))
                except Exception as exc:  # one meeting's surprise must not end the listing
                    result.skip(m.uuid, f"{type(exc).__name__}: {exc}")
            yield items
    finally:
        # Meetings Zoom described too poorly to keep (no uuid, no start time...), and why.
        _report_skips(client, result, reported)


def _report_skips(client: ZoomClient, result: SyncResult, reported: int) -> int:
    for label, reason in client.skipped[reported:]:
        result.skip(label, reason)
    return len(client.skipped)
