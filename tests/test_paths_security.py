"""Tenant boundaries on the filesystem (docs/paths.md), tried as a hostile user of a shared
install would: bob may not read alice's media or LEAP's own files through a local source, a
symlink or a swap after sync, nor write into them through an export folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests import media

TEMPLATE = """name = "talks"
presets = [{presets}]
[match]
keywords = ["talk"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
stages = ["download", "trim", "upload"]
[processing.trim]
enabled = false
"""
FOLDER_PRESET = """name = "folder"
platform = "local"
[metadata]
path = "{path}"
"""


def ok(res: Any) -> Any:
    assert res.code == 0, res.stderr
    return res


def refused(res: Any, *words: str) -> str:
    assert res.code == 2, (res.code, res.stdout, res.stderr)
    err: str = res.stderr
    assert "internal error" not in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, err
    return err


@pytest.fixture
def install(
    leap_env: dict[str, str], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """An admin, alice and bob, each with a root of their own; alice's talk is processed."""
    monkeypatch.setenv("LEAP_SYNC__LOCAL_SETTLE_SECONDS", "0")
    data = Path(leap_env["LEAP_DATA_DIR"])
    ok(cli("init", "--yes"))
    for name in ("alice", "bob"):
        ok(cli("--user", "admin", "user", "add", name))
        (tmp_path / name / "in").mkdir(parents=True)
        ok(cli("--user", "admin", "user", "set-roots", name, str(tmp_path / name)))
    ids = {u["name"]: u["id"] for u in cli("--json", "--user", "admin", "user", "list").json()}
    media.make_video(tmp_path / "alice" / "in" / "talk alice 2026-04-02.mp4", 2)
    (tmp_path / "alice" / "t.toml").write_text(TEMPLATE.format(presets=""))
    alice = ("--user", "alice")
    ok(cli(*alice, "source", "add", "local", "in", str(tmp_path / "alice" / "in")))
    ok(cli(*alice, "template", "add", "--file", str(tmp_path / "alice" / "t.toml")))
    ok(cli(*alice, "sync"))
    rid = cli("--json", *alice, "recordings", "list").json()[0]["id"]
    ok(cli(*alice, "process", str(rid), "--now", "--stages", "download"))
    rec = cli("--json", *alice, "recordings", "show", str(rid)).json()
    secret = tmp_path / "etc" / "shadow"  # stands for /etc/shadow: nobody's root
    secret.parent.mkdir()
    secret.write_text("root:$6$very-secret-hash:19000:0:99999:7:::\n")
    return {
        "data": data,
        "ids": ids,
        "alice_media": Path(rec["artifacts"]["source"]),
        "alice_file": tmp_path / "alice" / "in" / "talk alice 2026-04-02.mp4",
        "secret": secret,
        "bob": ("--user", "bob"),
        "root": tmp_path,
    }


def bob_ready(cli: Any, install: dict[str, Any], presets: str = "") -> None:
    bob, root = install["bob"], install["root"]
    (root / "bob" / "t.toml").write_text(TEMPLATE.format(presets=presets))
    ok(cli(*bob, "template", "add", "--file", str(root / "bob" / "t.toml")))
    ok(cli(*bob, "source", "add", "local", "in", str(root / "bob" / "in")))


def test_a_local_source_may_not_read_leaps_files_other_users_or_the_whole_disk(
    cli: Any, install: dict[str, Any]
) -> None:
    bob, data, ids = install["bob"], install["data"], install["ids"]
    alice_dir = install["alice_media"].parent
    for path in (alice_dir, data / "media" / f"user_{ids['alice']}", data, data / "media"):
        refused(cli(*bob, "source", "add", "local", "peek", str(path)), "LEAP's own files")
    refused(cli(*bob, "source", "add", "local", "peek", str(install["root"] / "alice")), "outside")
    refused(cli(*bob, "source", "add", "local", "all", "/"), "outside")
    refused(cli(*bob, "source", "add", "local", "empty", ""), "empty")
    # Their own imports folder is theirs without asking an admin; nobody else's is.
    own = data / "imports" / f"user_{ids['bob']}"
    own.mkdir(parents=True)
    ok(cli(*bob, "source", "add", "local", "mine", str(own)))
    theirs = data / "imports" / f"user_{ids['alice']}"
    theirs.mkdir(parents=True)
    refused(cli(*bob, "source", "add", "local", "theirs", str(theirs)), "LEAP's own files")
    # Even an admin's source may not hold LEAP's own files (it would import every user's media).
    refused(cli("--user", "admin", "source", "add", "local", "all", "/"), "contains LEAP's own")
    assert cli("--json", *bob, "source", "list").json()[0]["name"] == "mine"


def test_a_symlink_in_a_users_folder_does_not_lead_out_of_it(
    cli: Any, install: dict[str, Any]
) -> None:
    bob, inbox = install["bob"], install["root"] / "bob" / "in"
    bob_ready(cli, install)
    (inbox / "talk a.mp4").symlink_to(install["alice_file"])
    (inbox / "talk b.mp4").symlink_to(install["alice_media"])
    media.make_video(inbox / "talk mine 2026-04-03.mp4", 2)
    res = ok(cli(*bob, "sync"))
    assert "talk a.mp4" in res.stderr and "outside the folders" in res.stderr
    assert "talk b.mp4" in res.stderr and "LEAP's own files" in res.stderr
    titles = [r["title"] for r in cli("--json", *bob, "recordings", "list").json()]
    assert titles == ["talk mine"]


def test_a_file_swapped_for_a_symlink_after_sync_is_not_read(
    cli: Any, install: dict[str, Any]
) -> None:
    bob, inbox, data = install["bob"], install["root"] / "bob" / "in", install["data"]
    bob_ready(cli, install)
    victim = inbox / "talk swap 2026-04-03.mp4"
    media.make_video(victim, 2)
    ok(cli(*bob, "sync"))
    rid = cli("--json", *bob, "recordings", "list").json()[0]["id"]
    victim.unlink()
    victim.symlink_to(install["secret"])
    res = cli(*bob, "process", str(rid), "--now", "--stages", "download")
    assert res.code != 0
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr
    assert "outside the folders" in res.stderr
    stage = cli("--json", *bob, "recordings", "show", str(rid)).json()["stages"][0]
    assert stage["status"] == "failed" and "outside the folders" in stage["error"]
    leaked = [
        p for p in (data / "media").rglob("*") if p.is_file() and b"very-secret" in p.read_bytes()
    ]
    assert leaked == []
    # And swapped for a symlink into alice's media: refused the same way.
    victim.unlink()
    victim.symlink_to(install["alice_media"])
    res = cli(*bob, "process", str(rid), "--now", "--stages", "download", "--force")
    assert res.code != 0 and "LEAP's own files" in res.stderr


def test_a_fifo_or_folder_swapped_in_is_refused_without_hanging(
    cli: Any, install: dict[str, Any]
) -> None:
    bob, inbox = install["bob"], install["root"] / "bob" / "in"
    bob_ready(cli, install)
    victim = inbox / "talk fifo 2026-04-03.mp4"
    media.make_video(victim, 2)
    ok(cli(*bob, "sync"))
    rid = cli("--json", *bob, "recordings", "list").json()[0]["id"]
    victim.unlink()
    os.mkfifo(victim)
    res = cli(*bob, "process", str(rid), "--now", "--stages", "download")
    assert res.code != 0 and "not a regular file" in res.stderr, res.stderr


def test_export_paths_may_not_point_into_leaps_files_or_other_users(
    cli: Any, install: dict[str, Any]
) -> None:
    bob, root, data = install["bob"], install["root"], install["data"]
    alice_dir = install["alice_media"].parent
    for path in (str(data), f"{alice_dir}/{{title}}", f"{data}/{{title}}"):
        (root / "bob" / "p.toml").write_text(FOLDER_PRESET.format(path=path))
        refused(cli(*bob, "preset", "add", "--file", str(root / "bob" / "p.toml")), "own files")
    for path in (f"{root}/alice/out/{{title}}", "/{title}", "/etc/leap-{title}"):
        (root / "bob" / "p.toml").write_text(FOLDER_PRESET.format(path=path))
        refused(cli(*bob, "preset", "add", "--file", str(root / "bob" / "p.toml")), "outside")
    (root / "bob" / "p.toml").write_text(FOLDER_PRESET.format(path="relative/{title}"))
    refused(cli(*bob, "preset", "add", "--file", str(root / "bob" / "p.toml")), "starts with")
    (root / "bob" / "p.toml").write_text(FOLDER_PRESET.format(path=f"{root}/bob/out/{{title}}"))
    ok(cli(*bob, "preset", "add", "--file", str(root / "bob" / "p.toml")))
    bob_ready(cli, install, presets='"folder"')
    media.make_video(root / "bob" / "in" / "talk bob 2026-04-03.mp4", 2)
    ok(cli(*bob, "sync"))
    rid = str(cli("--json", *bob, "recordings", "list").json()[0]["id"])
    for value in (str(data / "x"), str(alice_dir)):
        refused(cli(*bob, "recordings", "meta", rid, "--set", f"path={value}"), "own files")
    refused(cli(*bob, "recordings", "meta", rid, "--set", "path=/tmp/x"), "outside")
    ok(cli(*bob, "recordings", "meta", rid, "--set", f"path={root}/bob/elsewhere"))


def test_the_export_folder_is_checked_when_written_and_planted_symlinks_are_replaced(
    cli: Any, install: dict[str, Any]
) -> None:
    bob, root, data = install["bob"], install["root"], install["data"]
    alice_file = install["alice_file"]
    before = alice_file.read_bytes()
    (root / "bob" / "p.toml").write_text(FOLDER_PRESET.format(path=f"{root}/bob/out/talk"))
    ok(cli(*bob, "preset", "add", "--file", str(root / "bob" / "p.toml")))
    bob_ready(cli, install, presets='"folder"')
    media.make_video(root / "bob" / "in" / "talk bob 2026-04-03.mp4", 2)
    ok(cli(*bob, "sync"))
    rid = str(cli("--json", *bob, "recordings", "list").json()[0]["id"])
    out = root / "bob" / "out" / "talk"
    out.mkdir(parents=True)
    for name in ("video.mp4", "metadata.json", ".metadata.json.leap-tmp", ".video.mp4.leap-tmp"):
        (out / name).symlink_to(alice_file)
    ok(cli(*bob, "process", rid, "--now"))
    assert alice_file.read_bytes() == before
    for name in ("video.mp4", "metadata.json"):
        assert (out / name).is_file() and not (out / name).is_symlink()
    assert json.loads((out / "metadata.json").read_text())["recording"]["id"] == int(rid)
    # The folder itself swapped for a symlink into LEAP's data directory after it was saved.
    (root / "bob" / "p2.toml").write_text(
        FOLDER_PRESET.format(path=f"{root}/bob/out2/talk").replace('"folder"', '"folder2"')
    )
    ok(cli(*bob, "preset", "add", "--file", str(root / "bob" / "p2.toml")))
    (root / "bob" / "t.toml").write_text(TEMPLATE.format(presets='"folder2"'))
    ok(cli(*bob, "template", "edit", "talks", "--file", str(root / "bob" / "t.toml")))
    (root / "bob" / "out2").symlink_to(data)
    res = cli(*bob, "process", rid, "--now", "--force", "--stages", "upload")
    assert res.code != 0 and "LEAP's own files" in res.stderr, res.stderr
    assert not (data / "talk").exists()


def test_roots_are_set_by_an_admin_only_and_checked_again_at_sync(
    cli: Any, install: dict[str, Any]
) -> None:
    bob, root, data = install["bob"], install["root"], install["data"]
    refused(cli(*bob, "user", "set-roots", "bob", "/"), "admin")
    admin = ("--user", "admin")
    refused(cli(*admin, "user", "set-roots", "bob", "relative"), "absolute")
    refused(cli(*admin, "user", "set-roots", "bob", str(data / "media")), "own files")
    bob_ready(cli, install)
    media.make_video(root / "bob" / "in" / "talk bob 2026-04-03.mp4", 2)
    ok(cli(*bob, "sync"))
    ok(cli(*admin, "user", "set-roots", "bob", "--reset"))
    res = cli(*bob, "sync")
    assert res.code != 0 and "outside the folders" in res.stderr
    view = ok(cli("--json", *admin, "user", "set-roots", "bob", str(root / "shared"))).json()
    assert view["roots"] == [str((root / "shared").resolve())]
