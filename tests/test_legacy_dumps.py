"""The real legacy databases: ``pg_dump`` of what the legacy backend's own Alembic chain built.

``tests/legacy_dumps/`` holds one dump per revision of the legacy history
(the last is its head). They are the ground truth the handover is tested
against: the head is adopted and handed back byte for byte, every older
revision is refused without a write, and the search function body those
databases really carry is one chatdb knows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg2
import pytest

from chatdb.catalog import bodies
from chatdb.migrate import history
from tests.conftest import HEAD, LEGACY_DUMPS, load_legacy, pg_dump_schema, run_cli
from tests.handover_support import execute, fingerprint
from tests.ops_support import one_line_error

HEAD_DUMP = LEGACY_DUMPS[-1]
# Rows in every table, a few hundred each, as the legacy backend wrote them.
ROWS = """
INSERT INTO threads
SELECT md5('t' || i)::uuid, CASE WHEN i % 3 = 0 THEN NULL ELSE md5('v' || i)::uuid END,
       CASE WHEN i % 4 = 0 THEN NULL ELSE md5('p' || i)::uuid END, 'thread ' || i,
       timestamptz '2025-01-01 00:00+00' + i * interval '1 hour',
       timestamptz '2025-01-01 00:30+00' + i * interval '1 hour', md5('u' || i % 7)::uuid
FROM generate_series(1, 200) i;
INSERT INTO messages (message_id, creation_date, content, thread_id, entity, is_complete)
SELECT md5('m' || i)::uuid, timestamptz '2025-02-01 00:00+00' + i * interval '1 minute',
       json_build_object('role', 'user', 'content', 'cortical neuron number ' || i)::text,
       md5('t' || (i % 200 + 1))::uuid,
       (ARRAY['USER', 'AI_TOOL', 'TOOL', 'AI_MESSAGE'])[i % 4 + 1]::entity, i % 5 <> 0
FROM generate_series(1, 400) i;
INSERT INTO tool_calls
SELECT 'call_' || i, 'tool-' || i % 5, '{"q": ' || i || '}', CASE WHEN i % 2 = 0 THEN true END,
       md5('m' || (i % 400 + 1))::uuid
FROM generate_series(1, 300) i;
INSERT INTO tool_selection
SELECT md5('s' || i)::uuid, md5('m' || (i % 400 + 1))::uuid, 'tool-' || i % 5
FROM generate_series(1, 200) i;
INSERT INTO token_consumption
SELECT md5('c' || i)::uuid, md5('m' || (i % 400 + 1))::uuid,
       (ARRAY['INPUT_NONCACHED', 'INPUT_CACHED', 'COMPLETION'])[i % 3 + 1]::tokentype,
       (ARRAY['CHAT_COMPLETION', 'TOOL_SELECTION', 'CALL_WITHIN_TOOL'])[i % 3 + 1]::task,
       i * 10, 'gpt-4o'
FROM generate_series(1, 300) i;
INSERT INTO complexity_estimation
SELECT md5('e' || i)::uuid, CASE WHEN i % 2 = 0 THEN i % 10 END, 'gpt-4o-mini',
       (ARRAY['NONE', 'MINIMAL', 'LOW', 'MEDIUM', 'HIGH'])[i % 5 + 1]::reasoninglevels,
       md5('m' || (i % 400 + 1))::uuid
FROM generate_series(1, 200) i;
"""


def _revision(dump: Path) -> str:
    return dump.stem.split("_", 1)[1]


def _has_history(url: str) -> bool:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass(%s)", (history.TABLE,))
            return cur.fetchone()[0] is not None
    finally:
        conn.close()


def _prosrc(url: str) -> str:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT prosrc FROM pg_proc WHERE proname = 'update_messages_search_vector'"
            )
            return cur.fetchone()[0]
    finally:
        conn.close()


def test_there_is_one_dump_per_legacy_revision():
    from chatdb.legacy.handover import LEGACY_CHAIN

    assert [_revision(dump) for dump in LEGACY_DUMPS] == list(LEGACY_CHAIN)


@pytest.mark.parametrize("dump", LEGACY_DUMPS, ids=[d.stem for d in LEGACY_DUMPS])
def test_each_legacy_revision_is_adopted_at_the_head_and_refused_before(new_database, tools, dump):
    url = new_database()
    load_legacy(url, dump)
    before = pg_dump_schema(tools, url)
    dry, real = run_cli("handover", "--dry-run", "--database", url), None
    if dump == HEAD_DUMP:
        assert dry.returncode == 0, dry.stderr
        assert "dry run, nothing written" in dry.stdout
        assert pg_dump_schema(tools, url) == before and not _has_history(url)
        real = run_cli("handover", "--database", url)
        assert real.returncode == 0, real.stderr
        assert "adopted: 001_baseline recorded as applied" in real.stdout
        assert _has_history(url)
        return
    revision = _revision(dump)
    for result in (dry, run_cli("handover", "--database", url)):
        line = one_line_error(result, url)
        assert f"is at legacy revision {revision} (" in line, line
        assert "alembic upgrade head" in line
    assert pg_dump_schema(tools, url) == before
    assert not _has_history(url)


def test_handover_then_undo_gives_back_the_dump_byte_for_byte_and_every_row(new_database, tools):
    url = new_database()
    load_legacy(url, HEAD_DUMP)
    execute(url, ROWS)
    schema, rows = pg_dump_schema(tools, url), fingerprint(url)
    assert {table: count for table, (count, _) in rows.items()} == {
        "threads": 200,
        "messages": 400,
        "tool_calls": 300,
        "tool_selection": 200,
        "token_consumption": 300,
        "complexity_estimation": 200,
        "alembic_version": 1,
    }
    handed = run_cli("handover", "--database", url)
    assert handed.returncode == 0, handed.stderr
    assert pg_dump_schema(tools, url) != schema, "the handover changed the schema"
    assert fingerprint(url) == rows
    status = run_cli("status", "--json", "--database", url)
    assert '"clean": true' in status.stdout, status.stdout
    assert run_cli("check", "--database", url).returncode == 0
    undone = run_cli("handover", "--undo", "--database", url)
    assert undone.returncode == 0, undone.stderr
    assert pg_dump_schema(tools, url) == schema
    assert fingerprint(url) == rows


def test_the_real_body_is_accepted_by_every_command(new_database):
    url = new_database()
    load_legacy(url, HEAD_DUMP)
    assert bodies.fingerprint(_prosrc(url)) == bodies.LEGACY_SEARCH_BODY.fingerprint
    for command in (["handover"], ["status"], ["check"], ["rollback"], ["migrate"], ["check"]):
        result = run_cli(*command, "--database", url)
        assert result.returncode == 0, (command, result.stderr)
        assert "DRIFT" not in result.stdout, (command, result.stdout)
    assert _prosrc(url) == bodies.LEGACY_SEARCH_BODY.source, "no command replaced it"


def test_chatdb_accepts_the_legacy_body_in_a_database_it_created(db_url):
    assert run_cli("migrate", "--database", db_url).returncode == 0
    execute(db_url, bodies.LEGACY_SEARCH_BODY.create_sql())
    assert run_cli("check", "--database", db_url).returncode == 0
    assert run_cli("rollback", "--database", db_url).returncode == 0


# -- the list of known bodies, proven against their origins ----------------------


def test_the_legacy_entry_is_the_real_prosrc(new_database):
    url = new_database()
    load_legacy(url, HEAD_DUMP)
    assert _prosrc(url) == bodies.LEGACY_SEARCH_BODY.source


def test_the_legacy_entry_is_what_the_revision_that_created_it_left(new_database):
    """Created by cd5a73ea91db and never touched again: the same text at every later dump."""
    for dump in LEGACY_DUMPS[LEGACY_DUMPS.index(HEAD_DUMP) - 1 :]:
        url = new_database()
        load_legacy(url, dump)
        assert _prosrc(url) == bodies.LEGACY_SEARCH_BODY.source, dump.name


def test_the_chatdb_entry_is_what_the_baseline_creates(db_url):
    assert run_cli("migrate", "--to", "001_baseline", "--database", db_url).returncode == 0
    assert _prosrc(db_url) == bodies.CHATDB_SEARCH_BODY.source


CONTRACT = [
    ("USER", '{"role": "user", "content": "Running quickly through the cortical neurons"}',
     "'cortic':5 'neuron':6 'quick':2 'run':1"),
    ("AI_MESSAGE", '{"content": "Running quickly"}', "'quick':2 'run':1"),
    ("USER", '{"content": ""}', ""),
    ("USER", '{"content": null}', ""),
    ("USER", '{"role": "assistant"}', ""),
    ("USER", "[1, 2, 3]", ""),
    ("USER", '["content"]', ""),
    ("USER", '"just a string"', ""),
    ("USER", '"content"', ""),
    ("USER", '{"content": 5}', "'5':1"),
    ("TOOL", '{"content": "words here"}', ""),
    ("AI_TOOL", "not json at all", ""),
    ("USER", "not json at all", "22P02"),
    ("AI_MESSAGE", "not json at all", "22P02"),
]  # fmt: skip


@pytest.mark.parametrize("body", bodies.KNOWN_BODIES, ids=lambda b: b.label)
def test_every_known_body_behaves_as_the_contract_says(new_database, body):
    url = new_database()
    load_legacy(url, HEAD_DUMP)
    execute(url, body.create_sql())
    assert _prosrc(url) == body.source
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO threads VALUES (gen_random_uuid(), NULL, NULL, 't', now(), now(), "
                "gen_random_uuid()) RETURNING thread_id"
            )
            (thread,) = cur.fetchone()
            for entity, content, expected in CONTRACT:
                cur.execute("SAVEPOINT example")
                try:
                    cur.execute(
                        "INSERT INTO messages VALUES (gen_random_uuid(), now(), %s, %s, %s, true) "
                        "RETURNING search_vector::text",
                        (content, thread, entity),
                    )
                    got = cur.fetchone()[0]
                except psycopg2.Error as exc:
                    got = exc.pgcode
                cur.execute("ROLLBACK TO SAVEPOINT example")
                assert got == expected, (entity, content)
    finally:
        conn.rollback()
        conn.close()


# -- a body that is neither -------------------------------------------------------


def test_a_changed_token_is_shown_and_the_printed_remedy_works(new_database, tools):
    url = new_database()
    load_legacy(url, HEAD_DUMP)
    original = pg_dump_schema(tools, url)
    changed = bodies.LEGACY_SEARCH_BODY.source.replace("'AI_MESSAGE'", "'AI_MESSAGES'")
    assert changed != bodies.LEGACY_SEARCH_BODY.source
    execute(url, f"CREATE OR REPLACE FUNCTION update_messages_search_vector() RETURNS trigger "
                 f"LANGUAGE plpgsql AS $x${changed}$x$")  # fmt: skip
    tampered = pg_dump_schema(tools, url)

    line = one_line_error(run_cli("handover", "--dry-run", "--database", url), url)
    assert "nearest is the legacy backend's (the legacy Alembic revision cd5a73ea91db" in line
    assert "statement 1 departs at \"'AI_MESSAGES'\" instead of \"'AI_MESSAGE'\"" in line
    assert "WHEN NEW.entity IN('USER', 'AI_MESSAGES') THEN" in line
    assert pg_dump_schema(tools, url) == tampered and not _has_history(url)

    remedy = re.search(r"`(chatdb repair [^`]+)`", line)
    assert remedy, line
    args = remedy.group(1).split()[1:]
    dry = run_cli(*args, "--dry-run", "--database", url)
    assert dry.returncode == 0 and "CREATE OR REPLACE FUNCTION" in dry.stdout, dry.stderr
    assert pg_dump_schema(tools, url) == tampered
    fixed = run_cli(*args, "--database", url)
    assert fixed.returncode == 0, fixed.stderr
    assert pg_dump_schema(tools, url) == original
    again = run_cli(*args, "--database", url)
    assert again.returncode == 0 and "nothing to repair" in again.stdout

    assert run_cli("handover", "--database", url).returncode == 0


# -- preflight: a role that may not do every step ---------------------------------


@pytest.fixture
def other_role(server_url):
    """A login role that owns nothing; yields (name, URL template) and drops it after."""
    from urllib.parse import quote, urlsplit, urlunsplit

    name, password = "chatdb_not_owner", "marker-pw-31337"
    execute(server_url, f"DROP ROLE IF EXISTS {name}; "
                        f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")  # fmt: skip
    parts = urlsplit(server_url)
    host = parts.netloc.rsplit("@", 1)[-1]

    def url_for(admin_url: str) -> str:
        path = urlsplit(admin_url).path
        netloc = f"{name}:{quote(password)}@{host}"
        return urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment))

    databases: list[str] = []
    yield name, url_for, databases
    for url in databases:  # what the role came to own goes back to the admin
        execute(url, f"REASSIGN OWNED BY {name} TO CURRENT_USER; DROP OWNED BY {name}")
    execute(server_url, f"DROP ROLE {name}")


def test_preflight_refuses_a_role_that_does_not_own_the_tables(new_database, tools, other_role):
    name, url_for, databases = other_role
    admin = new_database()
    databases.append(admin)
    load_legacy(admin, HEAD_DUMP)
    execute(admin, f"GRANT USAGE ON SCHEMA public TO {name}; "
                   f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}")  # fmt: skip
    url = url_for(admin)
    before = pg_dump_schema(tools, admin)
    for args in (["handover", "--dry-run"], ["handover"]):
        line = one_line_error(run_cli(*args, "--database", url), url)
        assert line.startswith(f"error: role {name} cannot hand over "), line
        assert "does not own table messages (owner " in line
        assert "does not own type entity (owner " in line
        assert "has no CREATE privilege on schema public" in line
        assert f"ALTER TABLE public.threads OWNER TO {name}" in line
        assert f"GRANT CREATE ON SCHEMA public TO {name}" in line
        assert line.endswith("nothing was written")
    assert pg_dump_schema(tools, admin) == before and not _has_history(admin)

    fixes = line.split("a superuser run: ", 1)[1].removesuffix("; nothing was written")
    execute(admin, fixes)
    handed = run_cli("handover", "--database", url)
    assert handed.returncode == 0, handed.stderr


def test_preflight_serves_migrate_and_rollback(new_database, other_role):
    name, url_for, databases = other_role
    admin = new_database()
    databases.append(admin)
    assert run_cli("migrate", "--database", admin).returncode == 0
    execute(admin, f"GRANT USAGE ON SCHEMA public TO {name}; "
                   f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}")  # fmt: skip
    url = url_for(admin)
    line = one_line_error(run_cli("rollback", "--database", url), url)
    assert line.startswith(f"error: role {name} cannot roll back "), line
    assert "does not own table migratehistory" in line
    assert "CREATE" not in line.split("run:")[0], "dropping needs no CREATE privilege"
    assert _pending(admin) == []
    assert run_cli("rollback", "--database", admin).returncode == 0
    line = one_line_error(run_cli("migrate", "--database", url), url)
    assert line.startswith(f"error: role {name} cannot migrate "), line
    assert _pending(admin) == [HEAD]


def _pending(url: str) -> list[str]:
    status = run_cli("status", "--json", "--database", url)
    return json.loads(status.stdout)["pending"]
