"""``--json`` on every command that reports: each shape pinned, as a contract for scripts.

stdout holds one JSON document; stderr keeps the target line and any notes.
The exit status is the same as without ``--json`` (``check`` and ``lint``
exit 1 on findings).
"""

from __future__ import annotations

import json
import re
import uuid

import click
import pytest

import chatdb
from chatdb.api import demo
from chatdb.migrate import loader
from tests.chat_support import chat, chat_url  # noqa: F401
from tests.conftest import HEAD, MIGRATIONS, REPO, load_legacy, run_cli

# The migrations after the baseline, which a handover applies.
LATER = loader.names(MIGRATIONS)[1:]

ISO = str  # timestamps are ISO 8601 strings


def _json(*args: str, code: int = 0) -> object:
    result = run_cli(*args)
    assert result.returncode == code, result.stderr
    return json.loads(result.stdout)


def _shape(value: object, keys: dict[str, type | tuple[type, ...]]) -> None:
    assert isinstance(value, dict) and set(value) == set(keys), value
    for key, kind in keys.items():
        assert isinstance(value[key], kind), (key, value[key])


def test_migrate_rollback_status_and_check(db_url):
    d = ("--database", db_url)
    migrated = _json("migrate", "--json", *d)
    _shape(migrated, {"database": str, "applied": list})
    assert migrated["applied"][0] == "001_baseline" and migrated["applied"][-1] == HEAD
    assert ":***@" in migrated["database"]

    state = _json("status", "--json", *d)
    _shape(
        state,
        {
            "database": str,
            "server_version": str,
            "applied": list,
            "pending": list,
            "alembic_version": (list, type(None)),
            "drift": dict,
        },
    )
    _shape(
        state["applied"][0],
        {"name": str, "migrated_at": ISO, "checksum": (str, type(None)), "adopted_from": object},
    )
    _shape(
        state["drift"],
        {
            "verdict": str,
            "clean": bool,
            "differences": list,
            "difference_details": list,
            "tampered": list,
            "history": list,
        },
    )

    checked = _json("check", "--json", *d)
    _shape(
        checked,
        {
            "database": str,
            "clean": bool,
            "verdict": str,
            "history": list,
            "tampered": list,
            "drift": list,
            "drift_details": list,
        },
    )
    assert checked["clean"] is True and checked["drift"] == []

    with chatdb.connect(db_url) as db:
        db.execute_sql("DROP INDEX ix_threads_vlab_id")
    drifted = _json("check", "--json", *d, code=1)
    assert drifted["clean"] is False and any("ix_threads_vlab_id" in d for d in drifted["drift"])
    (detail,) = [d for d in drifted["drift_details"] if d["object"] == "ix_threads_vlab_id"]
    assert detail["kind"] == "index" and detail["found"] is None and detail["expected"]
    with chatdb.connect(db_url) as db:
        db.execute_sql("CREATE INDEX ix_threads_vlab_id ON threads (vlab_id)")

    rolled = _json("rollback", "--json", *d)
    _shape(rolled, {"database": str, "rolled_back": list})
    assert rolled["rolled_back"] == [HEAD]
    assert _json("migrate", "--json", *d)["applied"] == [HEAD]


@pytest.mark.parametrize("command", ["migrate", "rollback", "create"])
def test_json_and_sql_are_a_usage_error(command):
    args = [command, *(["probe"] if command == "create" else []), "--json", "--sql"]
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr == (
        f"error: --json and --sql cannot be combined; choose one (see chatdb {command} --help)\n"
    )


def test_handover(db_url):
    load_legacy(db_url)
    d = ("--database", db_url)
    planned = _json("handover", "--dry-run", "--json", *d)
    _shape(
        planned,
        {
            "mode": str,
            "dry_run": bool,
            "report": list,
            "target": str,
            "already": type(None),
            "pending": list,
            "applied": list,
            "adopted": bool,
            "baseline_only": bool,
        },
    )
    assert planned["mode"] == "handover" and planned["dry_run"] is True
    assert all(isinstance(line, str) for line in planned["report"])
    assert planned["adopted"] is False and planned["pending"] == LATER
    done = _json("handover", "--json", *d)
    assert done["mode"] == "handover" and done["dry_run"] is False and done["report"]
    assert done["adopted"] is True and done["applied"] == LATER and done["pending"] == []
    again = _json("handover", "--json", *d)
    assert again["already"]["name"] == "001_baseline" and again["applied"] == []
    assert again["already"]["adopted_from"] == "6d8986f38d7b"
    undone = _json("handover", "--undo", "--json", *d)
    assert undone["mode"] == "undo" and undone["report"]
    assert undone["rollbacks"] == LATER[::-1] and undone["had_history"] is True


def test_lint():
    files = sorted(str(path) for path in MIGRATIONS.glob("0*.py"))
    clean = _json("lint", "--json", *files)
    _shape(clean, {"linted": list, "findings": list})
    assert clean == {"linted": files, "findings": []}


def test_lint_findings(tmp_path):
    import shutil

    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory)
    bad = directory / f"{int(HEAD[:3]) + 1:03d}_blocking.py"
    bad.write_text(
        "def migrate(migrator, database, *, fake=False):\n"
        "    migrator.sql('CREATE INDEX ix_bad ON messages (entity)')\n\n\n"
        "def rollback(migrator, database, *, fake=False):\n"
        "    migrator.sql('DROP INDEX ix_bad')\n"
    )
    found = _json("lint", "--json", str(bad), code=1)
    assert found["linted"] == [str(bad)] and found["findings"]
    _shape(
        found["findings"][0], {"path": str, "line": (int, type(None)), "rule": str, "message": str}
    )


def test_data_commands_and_their_new_options(chat_url, chat):  # noqa: F811
    demo.load()
    d = ("--database", chat_url)
    user = str(demo.DEMO_USER)

    hits = _json("search", "neurons", "--json", "--limit", "2", *d)
    assert len(hits) == 2
    _shape(
        hits[0],
        {
            "message_id": str,
            "thread_id": str,
            "entity": str,
            "creation_date": ISO,
            "rank": float,
            "snippet": str,
            "content": (dict, str),
            "exact": bool,
        },
    )
    second = _json("search", "neurons", "--json", "--limit", "1", "--offset", "1", *d)
    assert [hit["message_id"] for hit in second] == [hits[1]["message_id"]]
    in_vlab = _json("search", "neurons", "--json", "--vlab", str(demo.DEMO_VLAB), *d)
    in_project = _json("search", "neurons", "--json", "--project", str(demo.DEMO_PROJECT), *d)
    assert in_vlab and in_project
    elsewhere = str(uuid.uuid4())
    assert _json("search", "neurons", "--json", "--vlab", elsewhere, *d) == []
    assert _json("search", "neurons", "--json", "--project", elsewhere, *d) == []

    threads = _json("threads", "--user", user, "--json", *d)
    assert threads
    _shape(
        threads[0],
        {
            "thread_id": str,
            "user_id": str,
            "vlab_id": str,
            "project_id": str,
            "title": str,
            "creation_date": ISO,
            "update_date": ISO,
        },
    )
    assert _json("threads", "--user", str(uuid.uuid4()), "--json", *d) == []

    totals = _json("usage", "--json", *d)
    _shape(totals[0], {"model": str, "task": str, "type": str, "count": int})
    assert _json("usage", "--json", "--until", "2999-01-01", *d) == totals
    assert _json("usage", "--json", "--until", "2000-01-01", *d) == []

    reindexed = _json("reindex-search", "--json", *d)
    _shape(reindexed, {"recomputed": int, "last_id": str, "seconds": float})
    assert reindexed["recomputed"] == chatdb.Message.select().count()


def test_db_status():
    state = _json("db", "status", "--json")
    _shape(state, {"running": bool, "pid": (int, type(None)), "data": str, "url": str})
    assert state["running"] is False and state["pid"] is None


def test_create_without_changes(db_url, tmp_path):
    import shutil

    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory)
    created = _json(
        "create", "probe", "--json", "--database", db_url, "--directory", str(directory)
    )
    assert created == {"name": None, "path": None, "summary": []}


def _commands(group: click.Group, prefix: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(_commands(command, f"{prefix}{name} "))
        else:
            found[f"{prefix}{name}"] = command
    return found


def test_the_readme_lists_exactly_the_commands_that_take_json_and_directory():
    from chatdb.cli.main import cli

    readme = (REPO / "README.md").read_text()
    commands = _commands(cli)

    def taking(option: str) -> set[str]:
        return {
            name
            for name, command in commands.items()
            if any(option in param.opts for param in command.params)
        }

    json_list = readme.split("Commands\n  that take it: ", 1)[1].split(". ", 1)[0]
    assert set(re.findall(r"`([a-z -]+)`", json_list)) == taking("--json")
    directory_list = readme.split("The\nmigration commands (", 1)[1].split(")", 1)[0]
    assert set(re.findall(r"`([a-z -]+)`", directory_list)) == taking("--directory")


def test_repairs_and_write_snapshots(db_url, new_database, tmp_path):
    import shutil

    d = ("--database", db_url)
    assert run_cli("migrate", *d).returncode == 0
    searched = _json("repair", "search-function", "--dry-run", "--json", *d)
    _shape(
        searched,
        {
            "function": str,
            "dry_run": bool,
            "repaired": bool,
            "known_already": bool,
            "body": type(None),
            "sql": type(None),
        },
    )
    assert searched["known_already"] is True
    history = _json("repair", "history", "--json", *d)
    _shape(
        history, {"database": str, "dry_run": bool, "problems": list, "before": list, "after": list}
    )
    assert history["problems"] == [] and history["after"] == loader.names(MIGRATIONS)
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory)
    written = _json(
        "write-snapshots", "--json", "--directory", str(directory), "--database", new_database()
    )
    _shape(written, {"written": list})
    assert len(written["written"]) == len(loader.names(MIGRATIONS))
