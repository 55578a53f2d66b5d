"""The chat commands, run for real: search, threads, usage, reindex-search, demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import chatdb
from chatdb.api import demo
from tests.chat_support import chat, chat_url  # noqa: F401
from tests.conftest import REPO, run_cli


def test_demo_migrates_loads_and_searches(db_url):
    first = run_cli("demo", "--database", db_url)
    assert first.returncode == 0, first.stderr
    assert "pending" in first.stdout and "0 pending" in first.stdout
    assert f"loaded {sum(1 for _ in demo_messages())} messages" in first.stdout
    assert "<b>" not in first.stdout and first.stdout.count("AI_MESSAGE") >= 2
    again = run_cli("demo", "--database", db_url)
    assert again.returncode == 0, again.stderr
    assert "0 just now" in again.stdout and "not loaded" in again.stdout


def demo_messages():
    for _user, _title, turns in demo.CONVERSATIONS:
        for _question, tool, _result, _answer in turns:
            yield from range(4 if tool else 2)


def test_search_threads_and_usage_on_the_demo(chat_url, chat):  # noqa: F811
    demo.load()
    user = str(demo.DEMO_USER)
    text = run_cli("search", "potassium channels", "--database", chat_url)
    assert text.returncode == 0, text.stderr
    assert "AI_MESSAGE" in text.stdout and "USER" in text.stdout and "potassium" in text.stdout
    as_json = run_cli(
        "search", "neurons", "--user", user, "--limit", "2", "--json", "--database", chat_url
    )
    hits = json.loads(as_json.stdout)
    assert len(hits) == 2 and all("<b>neurons</b>" in hit["snippet"] for hit in hits)
    threads_of_demo = {
        str(t.thread_id) for t in chatdb.Thread.select().where(chatdb.Thread.user_id == user)
    }
    assert {hit["thread_id"] for hit in hits} <= threads_of_demo
    options = ("--user", user, "--limit", "2", "--json", "--no-snippets", "--database", chat_url)
    bare = run_cli("search", "neurons", *options)
    assert [(h["message_id"], h["snippet"]) for h in json.loads(bare.stdout)] == [
        (hit["message_id"], None) for hit in hits
    ]
    short = run_cli("search", "potassium channels", "--no-snippets", "--database", chat_url)
    assert short.returncode == 0 and "AI_MESSAGE" in short.stdout
    assert "<b>" not in short.stdout and "potassium" not in short.stdout  # no snippet lines
    nothing = run_cli("search", "'; DROP TABLE messages; --", "--database", chat_url)
    assert nothing.returncode == 0 and nothing.stdout.strip() == "no matches"
    capped = run_cli("search", " or ".join(["neurons"] * 40), "--database", chat_url)
    assert capped.returncode == 0 and "AI_MESSAGE" in capped.stdout
    assert "\nnote: only the first 16 terms were searched; ignored: neurons or" in capped.stderr

    listing = run_cli("threads", "--user", user, "--database", chat_url)
    assert listing.returncode == 0, listing.stderr
    titles = [line.split("  ", 2)[2] for line in listing.stdout.splitlines()]
    assert titles == [title for u, title, _ in reversed(demo.CONVERSATIONS) if u == demo.DEMO_USER]

    usage = run_cli("usage", "--user", user, "--json", "--database", chat_url)
    totals = json.loads(usage.stdout)
    expected = chatdb.token_usage(user_id=demo.DEMO_USER)
    assert [row["count"] for row in totals] == [t.count for t in expected]
    future = run_cli("usage", "--since", "2999-01-01", "--database", chat_url)
    assert future.stdout.strip() == "no token usage recorded"


def test_reindex_search_command(chat_url, chat):  # noqa: F811
    demo.load()
    result = run_cli("reindex-search", "--batch-size", "5", "--database", chat_url)
    assert result.returncode == 0, result.stderr
    count = chatdb.Message.select().count()
    assert f"recomputed {count} search vectors" in result.stdout
    assert "search vectors" in result.stderr  # the progress bar
    last = max(str(m.message_id) for m in chatdb.Message.select())
    resumed = run_cli("reindex-search", "--after", last, "--database", chat_url)
    assert resumed.returncode == 0 and "recomputed 0 search vectors" in resumed.stdout


def test_bad_input_is_one_line(chat_url):  # noqa: F811
    bad_user = run_cli("threads", "--user", "nope", "--database", chat_url)
    assert bad_user.returncode == 2 and "not a valid UUID" in bad_user.stderr
    bad_date = run_cli("usage", "--since", "yesterday", "--database", chat_url)
    assert bad_date.returncode == 2 and "yesterday" in bad_date.stderr
    unreachable = run_cli(
        "search", "x", "--database", "postgresql://u:secret@/db?host=/nonexistent"
    )
    assert unreachable.returncode == 1
    named, error = unreachable.stderr.splitlines()
    assert named == "target: database db on /nonexistent:5432 as u (from --database)"
    assert error.startswith("error: cannot connect") and "secret" not in unreachable.stderr
    assert "Traceback" not in unreachable.stderr


def test_readme_python_example_runs(chat_url):  # noqa: F811
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Using chatdb from Python", 1)[1]
    script = section.split("```python\n", 1)[1].split("```", 1)[0]
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "DATABASE_URL": chat_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "AI_MESSAGE <b>Pyramidal</b> <b>neurons</b>" in result.stdout
    assert "TokenTotal(model='gpt-4o-mini'" in result.stdout
