"""`leap credentials add ... --replace` says what it did: on a name not yet used it adds the
credential (so a provisioning script can run one command every time) and says "added"."""

from __future__ import annotations

from typing import Any

import pytest


def add(cli: Any, *extra: str) -> Any:
    return cli("credentials", "add", "fireworks", "fw", "--api-key-env", "FW_KEY", *extra)


def test_replace_adds_a_missing_credential_and_says_so(
    leap_env: dict[str, str], cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("init", "--yes").code == 0
    monkeypatch.setenv("FW_KEY", "fw-key-number-one")
    first = add(cli, "--replace")
    assert first.code == 0, first.stderr
    said = first.stdout + first.stderr
    assert "added fireworks credential 'fw'" in said and "replaced" not in said
    monkeypatch.setenv("FW_KEY", "fw-key-number-two")
    second = add(cli, "--replace")
    assert (
        second.code == 0 and "replaced fireworks credential 'fw'" in second.stdout + second.stderr
    )
    assert [c["name"] for c in cli("--json", "credentials", "list").json()] == ["fw"]
    again = add(cli)
    assert again.code == 7 and "--replace" in again.stderr  # without it, no silent overwrite
