"""Search snippets whose cost per hit does not grow with the message.

``ts_headline`` parses the whole text it is given, so on a long message it
costs far more than the search itself (about 8 ms for 83 KB). The search
statement makes the snippets of short hits only (content of at most
:data:`WINDOW` bytes, a size PostgreSQL knows without reading the value;
see :func:`columns`), over their whole text as always. The snippets of the
longer hits are made by a second, short statement (:data:`HEADLINES`) over
the text Python already holds: whole if it has at most :data:`WINDOW`
characters (the snippet it always had), else the :data:`WINDOW` characters
around the first word that starts with one of the query's lexemes
(:func:`window`), found with plain string searches. A search whose hits are
all short makes one round trip, as before.

Snippets are HTML, safe by construction: ``ts_headline`` marks matches with
a fresh random marker per search, then every piece of message text is
HTML-escaped and only the markers become ``<b>``/``</b>``. Whatever a
message holds, the snippet's only markup is chatdb's own.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

HEADLINE_OPTIONS = "MaxWords=35, MinWords=15, MaxFragments=2"
WINDOW = 1000  # characters of a long message a snippet is drawn from; bytes of a short one
BEFORE = WINDOW // 5  # of which before the first match
# The lexemes of the query: where a long message's window starts.
TERMS = "tsvector_to_array(to_tsvector('english', %(query)s))"


def columns(tsquery: str, wanted: bool) -> str:
    """The search statement's last two columns: the snippet of a short hit (NULL for a
    long one, or when no snippets are ``wanted``) and the query's lexemes."""
    if not wanted:
        return f"NULL::text AS snippet, {TERMS} AS terms"
    return (
        f"CASE WHEN octet_length(hit.content) <= {WINDOW} THEN ts_headline('english',"
        f" hit.content::jsonb ->> 'content', {tsquery}, %(headline)s) END AS snippet,"
        f" {TERMS} AS terms"
    )


# Text the API could not take from the hit (content whose "content" is not a string) is
# read again on the server, as the search trigger reads it.
HEADLINES = """
    SELECT ts_headline('english',
                       coalesce(w.body, (SELECT m.content::jsonb ->> 'content' FROM messages m
                                         WHERE m.message_id = w.message_id)),
                       websearch_to_tsquery('english', %(query)s), %(headline)s)
    FROM unnest(%(bodies)s::text[], %(ids)s::uuid[]) WITH ORDINALITY AS w(body, message_id, n)
    ORDER BY w.n
"""


def body(content: object) -> str | None:
    """The text the search trigger indexes of a message's content, when Python holds it."""
    if isinstance(content, dict):
        text = content.get("content")
        return text if isinstance(text, str) else None
    return None


def window(text: str, terms: Sequence[str]) -> str:
    """``text`` if short, else the :data:`WINDOW` characters around its first match.

    The first match is the first word starting with one of ``terms`` (English
    stems are mostly prefixes of their words), written in lower case, with a
    capital or in capitals (lowering a long text would cost more than the
    searches); without one, the window is the start of the text. A window
    cut inside a word drops that word.
    """
    if len(text) <= WINDOW:
        return text
    first = len(text)
    for term in terms:
        for written in dict.fromkeys((term, term.capitalize(), term.upper())):
            first = _word_start(text, written, first)
    start = 0 if first == len(text) else max(0, first - BEFORE)
    part = text[start : start + WINDOW]
    if start > 0:
        part = _after_first_space(part)
    if start + WINDOW < len(text):
        part = _before_last_space(part)
    return part


def _word_start(text: str, term: str, before: int) -> int:
    """Where the first word of ``text`` starting with ``term`` is, if before ``before``;
    else ``before``."""
    at = text.find(term, 0, before) if term else -1
    while at > 0 and text[at - 1].isalnum():
        at = text.find(term, at + 1, before)
    return before if at < 0 else at


def _after_first_space(part: str) -> str:
    cut = re.search(r"\s", part)
    return part if cut is None else part[cut.end() :]


def _before_last_space(part: str) -> str:
    cut = max(part.rfind(space) for space in " \t\n\r\f\v")
    return part if cut <= 0 else part[:cut]


def render_snippet(headline: str, marker: str) -> str:
    """``ts_headline``'s text as HTML: all of it escaped, its markers turned into ``<b>``."""
    bold = {f"s{marker}": "<b>", f"e{marker}": "</b>"}
    pieces = re.split(f"([se]{marker})", headline)
    return "".join(bold.get(piece) or html.escape(piece, quote=True) for piece in pieces)
