"""Legacy databases holding rows, and a fingerprint of every row, for the handover tests."""

from __future__ import annotations

import psycopg2

from tests.chat_support import TABLES
from tests.conftest import load_legacy

LEGACY_TABLES = (*TABLES, "alembic_version")

# Rows in every table, written the way the legacy backend wrote them: ids from
# the application, JSON documents in messages.content, no server defaults.
SEED = """
INSERT INTO threads VALUES
    ('11111111-1111-4111-8111-111111111111', NULL, NULL, 'Neurons',
     '2025-01-02 10:00+00', '2025-01-02 10:05+00', 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'),
    ('22222222-2222-4222-8222-222222222222', 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb',
     'cccccccc-cccc-4ccc-8ccc-cccccccccccc', 'Synapses',
     '2025-03-04 08:00+00', '2025-03-04 09:00+00', 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa');
INSERT INTO messages (message_id, creation_date, content, thread_id, entity, is_complete) VALUES
    ('00000000-0000-4000-8000-000000000001', '2025-01-02 10:00+00',
     '{"role": "user", "content": "How fast do cortical neurons fire?"}',
     '11111111-1111-4111-8111-111111111111', 'USER', true),
    ('00000000-0000-4000-8000-000000000002', '2025-01-02 10:01+00',
     '{"role": "assistant", "content": "", "tool_calls": [{"id": "call_1"}]}',
     '11111111-1111-4111-8111-111111111111', 'AI_TOOL', true),
    ('00000000-0000-4000-8000-000000000003', '2025-01-02 10:02+00',
     '{"role": "tool", "tool_call_id": "call_1", "content": "10 Hz"}',
     '11111111-1111-4111-8111-111111111111', 'TOOL', true),
    ('00000000-0000-4000-8000-000000000004', '2025-01-02 10:03+00',
     '{"role": "assistant", "content": "Around ten spikes per second."}',
     '11111111-1111-4111-8111-111111111111', 'AI_MESSAGE', false),
    ('00000000-0000-4000-8000-000000000005', '2025-03-04 08:00+00',
     '{"role": "user", "content": "What is a synapse?"}',
     '22222222-2222-4222-8222-222222222222', 'USER', true);
INSERT INTO tool_calls VALUES
    ('call_1', 'literature-search', '{"query": "firing rate"}', true,
     '00000000-0000-4000-8000-000000000002'),
    ('call_2', 'web-search', '{}', NULL, '00000000-0000-4000-8000-000000000002');
INSERT INTO tool_selection VALUES
    ('33333333-3333-4333-8333-333333333333', '00000000-0000-4000-8000-000000000001',
     'literature-search');
INSERT INTO token_consumption VALUES
    ('44444444-4444-4444-8444-444444444441', '00000000-0000-4000-8000-000000000002',
     'INPUT_NONCACHED', 'CHAT_COMPLETION', 1200, 'gpt-4o'),
    ('44444444-4444-4444-8444-444444444442', '00000000-0000-4000-8000-000000000002',
     'COMPLETION', 'CALL_WITHIN_TOOL', 80, 'gpt-4o-mini');
INSERT INTO complexity_estimation VALUES
    ('55555555-5555-4555-8555-555555555555', 3, 'gpt-4o-mini', 'LOW',
     '00000000-0000-4000-8000-000000000001'),
    ('55555555-5555-4555-8555-555555555556', NULL, 'gpt-4o-mini', NULL,
     '00000000-0000-4000-8000-000000000005');
"""


def execute(url: str, sql: str) -> None:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def legacy_with_rows(url: str) -> str:
    """Build the legacy schema independently of chatdb and put rows in every table."""
    load_legacy(url)
    execute(url, SEED)
    return url


def fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """Row count and an md5 over every row's full text, per legacy table present."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            result = {}
            for table in LEGACY_TABLES:
                cur.execute("SELECT to_regclass(%s)", (table,))
                if cur.fetchone()[0] is None:
                    continue
                cur.execute(
                    "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                    f" FROM {table} t"
                )
                result[table] = cur.fetchone()
            return result
    finally:
        conn.close()
