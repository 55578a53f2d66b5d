"""Commands over the chats themselves: search, threads, usage, reindex-search, demo."""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from chatdb.api.defaults import DEFAULT_BATCH_SIZE
from chatdb.cli.common import (
    MAX_BATCH,
    MAX_OFFSET,
    MAX_ROWS,
    confirm,
    database_option,
    directory_option,
    friendly,
    json_option,
    make_runner,
    print_json,
    say,
    target_url,
    up_to,
)

if TYPE_CHECKING:
    from chatdb.api.database import Database
    from chatdb.api.reindex import Progress
    from chatdb.api.search import SearchHit
    from chatdb.schema.models import Thread

BOLD_ON, BOLD_OFF = click.style("", bold=True, reset=False), click.style("", reset=True)


@contextmanager
def _opened(database: str | None) -> Iterator[Database]:
    """The command's database, open for the block and closed after."""
    from chatdb.api.connection import connect

    db = connect(target_url(database))
    try:
        yield db
    finally:
        db.close_all()


@click.command()
@database_option
@click.argument("query")
@click.option("--user", "user_id", type=click.UUID, help="Only this user's threads.")
@click.option("--thread", "thread_id", type=click.UUID, help="Only this thread.")
@click.option("--vlab", "vlab_id", type=click.UUID, help="Only this virtual lab's threads.")
@click.option("--project", "project_id", type=click.UUID, help="Only this project's threads.")
@click.option("--limit", type=up_to(MAX_ROWS), default=20, show_default=True)
@click.option(
    "--offset",
    type=click.IntRange(min=0, max=MAX_OFFSET),
    default=0,
    show_default=True,
    help="Skip this many hits (the next page: the previous --offset plus --limit).",
)
@click.option(
    "--no-snippets",
    "snippets",
    flag_value=False,
    default=True,
    help="Leave the snippets out (faster on long messages); --json gives them as null.",
)
@click.option(
    "--candidates",
    type=click.IntRange(min=1),
    default=None,
    help="Rank at most this many matches (the first the index returns): faster for a"
    " common word, not exact (the output says so). Default: rank every match.",
)
@json_option
@friendly
def search(
    database: str | None,
    query: str,
    user_id: uuid.UUID | None,
    thread_id: uuid.UUID | None,
    vlab_id: uuid.UUID | None,
    project_id: uuid.UUID | None,
    limit: int,
    offset: int,
    snippets: bool,
    candidates: int | None,
    as_json: bool,
) -> None:
    """Full-text search of messages, best match first (web-search syntax: "phrase", or, -word)."""
    from chatdb.api.search_limits import MAX_QUERY_TERMS

    with _opened(database) as db:
        hits = db.search_messages(
            query,
            user_id=user_id,
            thread_id=thread_id,
            vlab_id=vlab_id,
            project_id=project_id,
            limit=limit,
            offset=offset,
            snippets=snippets,
            candidates=candidates,
        )
    if not hits.exact:
        say(f"note: ranked only the first {candidates:,} matches; these are the best of those")
    if hits.dropped:
        say(
            f"note: only the first {MAX_QUERY_TERMS} terms were searched; ignored: "
            + " ".join(hits.dropped)[:200]
        )
    if as_json:
        print_json([{**_hit_dict(hit, snippets), "exact": hits.exact} for hit in hits])
    else:
        _print_hits(hits, snippets)


def _hit_dict(hit: SearchHit, snippets: bool) -> dict[str, Any]:
    message = hit.message
    return {
        "message_id": str(message.message_id),
        "thread_id": str(hit.thread_id),
        "entity": message.entity.name,
        "creation_date": message.creation_date.isoformat(),
        "rank": hit.rank,
        "snippet": hit.snippet if snippets else None,
        "content": message.content,
    }


def _print_hits(hits: list[SearchHit], snippets: bool) -> None:
    import html  # only searches print snippets; every other command starts without it

    if not hits:
        click.echo("no matches")
    for hit in hits:
        message = hit.message
        click.echo(
            f"{hit.rank:.3f}  {message.creation_date:%Y-%m-%d %H:%M}  {message.entity.name:<10}"
            f"  thread {hit.thread_id}  message {message.message_id}"
        )
        if snippets:
            snippet = html.unescape(hit.snippet.replace("<b>", BOLD_ON).replace("</b>", BOLD_OFF))
            click.echo(f"    {snippet}")


@click.command()
@database_option
@click.option("--user", "user_id", type=click.UUID, required=True, help="Whose threads.")
@click.option("--limit", type=up_to(MAX_ROWS), default=50, show_default=True)
@json_option
@friendly
def threads(database: str | None, user_id: uuid.UUID, limit: int, as_json: bool) -> None:
    """A user's threads, most recently updated first."""
    with _opened(database) as db:
        found = db.list_threads(user_id, limit=limit)
    if as_json:
        print_json([_thread_dict(thread) for thread in found])
        return
    if not found:
        click.echo(f"no threads for user {user_id}")
    for thread in found:
        click.echo(f"{thread.update_date:%Y-%m-%d %H:%M}  {thread.thread_id}  {thread.title}")


def _thread_dict(thread: Thread) -> dict[str, Any]:
    return {
        "thread_id": str(thread.thread_id),
        "user_id": str(thread.user_id),
        "vlab_id": None if thread.vlab_id is None else str(thread.vlab_id),
        "project_id": None if thread.project_id is None else str(thread.project_id),
        "title": thread.title,
        "creation_date": thread.creation_date.isoformat(),
        "update_date": thread.update_date.isoformat(),
    }


WHEN = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"])


@click.command()
@database_option
@click.option("--user", "user_id", type=click.UUID, help="Only this user's messages.")
@click.option("--thread", "thread_id", type=click.UUID, help="Only this thread's messages.")
@click.option("--since", type=WHEN, help="Only messages created from this UTC date or time on.")
@click.option("--until", type=WHEN, help="Only messages created before this UTC date or time.")
@json_option
@friendly
def usage(
    database: str | None,
    user_id: uuid.UUID | None,
    thread_id: uuid.UUID | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    as_json: bool,
) -> None:
    """Tokens consumed, summed by model, task and token type."""
    since_utc, until_utc = (None if t is None else t.replace(tzinfo=dt.UTC) for t in (since, until))
    with _opened(database) as db:
        totals = db.token_usage(
            user_id=user_id, thread_id=thread_id, since=since_utc, until=until_utc
        )
    rows: list[dict[str, Any]] = [
        {"model": t.model, "task": t.task.name, "type": t.type.name, "count": t.count}
        for t in totals
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no token usage recorded")
        return
    width = max(len(row["model"]) for row in rows)
    for row in rows:
        click.echo(
            f"{row['model']:<{width}}  {row['task']:<16}  {row['type']:<15}  {row['count']:>12,}"
        )
    click.echo(f"{'total':<{width}}  {'':<16}  {'':<15}  {sum(r['count'] for r in rows):>12,}")


@click.command("reindex-search")
@database_option
@click.option(
    "--batch-size",
    type=up_to(MAX_BATCH),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    help="Rows per transaction.",
)
@click.option(
    "--after",
    type=click.UUID,
    help="Resume: only messages whose id sorts after this one (printed when interrupted).",
)
@json_option
@friendly
def reindex(database: str | None, batch_size: int, after: uuid.UUID | None, as_json: bool) -> None:
    """Recompute every message's search vector, in short batches, safe while the app writes."""
    last: list[Progress] = []
    try:
        with _opened(database) as db, _ProgressBar() as bar:

            def on_batch(progress: Progress) -> None:
                last.append(progress)
                bar(progress)

            final = db.reindex_search(batch_size=batch_size, after=after, on_batch=on_batch)
    except KeyboardInterrupt:
        resume = last[-1].last_id if last else after
        hint = f" --after {resume}" if resume else ""
        say(f"interrupted; committed batches are kept. Resume with: chatdb reindex-search{hint}")
        sys.exit(130)
    if as_json:
        print_json(
            {
                "recomputed": final.done,
                "last_id": None if final.last_id is None else str(final.last_id),
                "seconds": final.elapsed,
            }
        )
        return
    click.echo(
        f"recomputed {final.done:,} search vectors in {final.elapsed:.1f} s"
        f" ({final.rate:,.0f} rows/s)"
    )


class _ProgressBar:
    """A click progress bar (rows/s and ETA), opened once the total is known."""

    def __init__(self) -> None:
        self._bar: Any = None

    def __enter__(self) -> _ProgressBar:
        return self

    def __call__(self, progress: Progress) -> None:
        if self._bar is None:
            self._bar = click.progressbar(
                length=progress.total,
                label="search vectors",
                show_eta=True,
                show_pos=True,
                item_show_func=lambda p: f"{p.rate:,.0f} rows/s" if p else None,
                file=sys.stderr,
            ).__enter__()
        self._bar.update(progress.done - self._bar.pos, progress)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


@click.command("demo")
@database_option
@directory_option
@click.option("--yes", is_flag=True, help="Also into the database DATABASE_URL names, unasked.")
@friendly
def demo_command(database: str | None, directory: str | None, yes: bool) -> None:
    """Migrate, load the demo conversations into an empty database, and search them."""
    from chatdb.api import demo
    from chatdb.api.connection import connect
    from chatdb.api.search import search_messages
    from chatdb.db.target import ENV_VAR, choose
    from chatdb.db.urls import mask_password

    with make_runner(database, directory) as runner:
        if choose(database).source == ENV_VAR and not yes:  # a real database nobody named here
            confirm(
                f"migrate {mask_password(runner.url)} and load the demo conversations if empty?",
                f"chatdb demo migrates and fills the database {ENV_VAR} names; "
                "confirm with --yes, or name the database with --database",
            )
        ran = runner.migrate()
        state = runner.status()
    url = runner.url
    click.echo(f"database: {mask_password(url)}")
    click.echo(f"server:   PostgreSQL {state.server_version}")
    click.echo(
        f"migrations: {len(state.applied)} applied ({len(ran)} just now),"
        f" {len(state.pending)} pending"
    )
    click.echo("".join(f"  [x] {a.name}\n" for a in state.applied), nl=False)
    with connect(url):
        if demo.is_empty():
            count = demo.load()
            click.echo(f"demo data: loaded {count} messages in {len(demo.CONVERSATIONS)} threads")
        else:
            click.echo("demo data: not loaded, the database already has messages")
        hits = search_messages(demo.EXAMPLE_QUERY, limit=5)
    click.echo(f'\n$ chatdb search "{demo.EXAMPLE_QUERY}" --limit 5')
    _print_hits(hits, snippets=True)
    click.echo(f"\nnext: chatdb threads --user {demo.DEMO_USER}; chatdb usage")


COMMANDS = (search, threads, usage, reindex, demo_command)
