"""A legacy-shaped chat database of any size, for benchmarks and tests.

``build(url, messages, threads, seed)`` migrates an empty database to the
baseline (``001_baseline``: exactly the legacy schema) with chatdb's runner
and fills it with ``COPY``: threads of about twenty per user, conversations
of user turns, assistant replies, tool rounds (an assistant message carrying
tool calls, then one tool result per call), with tool calls, tool selections,
complexity estimations and token consumption rows hanging off the messages
in the proportions the chat backend writes them.

Message text is drawn from a :class:`Vocabulary` the caller passes. The
default, :func:`synthetic`, has about 12,000 English-like words with Zipf
frequencies and a few dozen domain words at its head, so those match most
messages: the stress case for search, and all the tests need. The
benchmarks pass real English word frequencies instead (``bench/vocabulary.py``,
which needs the ``bench`` extra); this module needs nothing beyond chatdb's
own dependencies. The same seed and vocabulary give the same database.

Run ``python -m bench.build_dataset --messages N`` to build one on a throwaway
server and print its row counts.
"""

from __future__ import annotations

import bisect
import datetime as dt
import io
import itertools
import json
import queue
import random
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import psycopg2

from chatdb.db.copy import copy_value
from chatdb.migrate.executor import Runner

BASELINE = "001_baseline"
THREADS_PER_USER = 20
MESSAGES_PER_THREAD = 10
VOCABULARY_SIZE = 12_000
_BATCH_THREADS = 2_000
_EPOCH = dt.datetime(2025, 11, 14, tzinfo=dt.UTC)

STOPWORDS = (
    "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "with", "as", "on",
    "this", "are", "be", "by", "from", "at", "or", "an", "which", "can", "we", "how",
    "what", "do", "its", "these", "there", "you", "i", "me", "about", "have", "not",
)  # fmt: skip

REAL_WORDS = (
    "neuron", "brain", "cell", "model", "data", "region", "simulation", "cortex", "synapse",
    "morphology", "paper", "study", "result", "activity", "network", "layer", "signal",
    "species", "mouse", "rat", "human", "gene", "protein", "channel", "current", "voltage",
    "spike", "firing", "rate", "dendrite", "axon", "soma", "hippocampus", "thalamus",
    "cerebellum", "striatum", "pyramidal", "interneuron", "inhibitory", "excitatory",
    "connection", "density", "volume", "atlas", "literature", "search", "article", "author",
    "journal", "experiment", "recording", "electrode", "trace", "stimulus", "response",
    "plot", "figure", "table", "value", "number", "average", "mean", "distribution",
    "analysis", "method", "parameter", "circuit", "microcircuit", "population", "type",
    "class", "marker", "expression", "receptor", "dopamine", "glutamate", "serotonin",
    "calcium", "sodium", "potassium", "membrane", "resistance", "capacitance", "threshold",
    "latency", "amplitude", "frequency", "oscillation", "rhythm", "theta", "gamma", "sleep",
    "memory", "learning", "plasticity", "development", "disease", "alzheimer", "parkinson",
    "epilepsy", "tool", "query", "answer", "question", "explain", "show", "find", "list",
    "compare", "describe", "summarize", "give", "need", "want", "please", "thanks", "help",
    "also", "more", "most", "many", "several", "other", "different", "similar", "specific",
    "recent", "known", "important", "main", "large", "small", "high", "low", "first", "last",
    "new", "old", "time", "year", "week", "project", "virtual", "lab", "platform", "dataset",
    "file", "format", "download", "upload", "link", "source", "reference", "citation",
    "review", "evidence", "hypothesis", "theory", "structure", "function", "role",
    "mechanism", "process", "pathway", "input", "output", "projection", "target", "area",
    "cortical", "subcortical", "neocortex", "somatosensory", "visual", "auditory", "motor",
    "prefrontal", "olfactory", "barrel", "column", "fiber", "tract", "white", "gray",
    "matter", "imaging", "microscopy", "staining", "reconstruction", "branch", "length",
    "diameter", "surface", "shape", "feature", "measurement", "statistic", "correlation",
    "variance", "sample", "size", "count", "total", "percentage", "ratio", "increase",
    "decrease", "change", "effect", "condition", "control", "treatment", "drug", "dose",
    "age", "sex", "adult", "juvenile", "embryo", "tissue", "slice", "culture", "vivo",
    "vitro", "silico", "code", "python", "script", "error", "step", "run", "job",
)  # fmt: skip

_ONSETS = (
    "b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "v", "br", "cr", "dr",
    "gr", "pl", "pr", "st", "tr", "ch", "sh", "th", "k", "w", "fl", "gl", "sp",
)  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "oa")
# Final clusters no English stemmer strips, so each generated word is its own lexeme.
_FINALS = ("nd", "rk", "mp", "lt", "sk", "ft", "rb", "nk", "x", "z", "rp", "lk", "pt", "rm")

TOOLS = (
    "literature-search", "web-search", "brain-region-getall", "brain-region-getone",
    "cell-morphology-getall", "cell-morphology-getone", "electrophys-getall",
    "species-getall", "ion-channel-getall", "circuit-getone", "simulation-getall",
    "plot-generator", "run-python", "resolve-entities", "get-obi-software-docs",
)  # fmt: skip
MODELS = ("openai/gpt-4o-mini", "openai/gpt-4.1-mini", "openai/gpt-5-mini", "openai/gpt-4.1")
REASONING = ("NONE", "MINIMAL", "LOW", "MEDIUM", "HIGH")


@dataclass(frozen=True)
class Vocabulary:
    """Words to draw message text from, with their relative frequencies."""

    words: tuple[str, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def from_frequencies(cls, frequencies: Iterable[tuple[str, float]]) -> Vocabulary:
        """From (word, frequency) pairs; frequencies need not sum to one."""
        pairs = list(frequencies)
        return cls(
            tuple(word for word, _ in pairs),
            tuple(itertools.accumulate(frequency for _, frequency in pairs)),
        )

    def draw(self, rng: random.Random, count: int) -> list[str]:
        """``count`` words drawn with the vocabulary's frequencies."""
        total, hi = self.cumulative[-1], len(self.words) - 1
        return [
            self.words[bisect.bisect(self.cumulative, rng.random() * total, 0, hi)]
            for _ in range(count)
        ]


@cache
def synthetic() -> Vocabulary:
    """The default vocabulary: a few dozen frequent words match most messages (a stress case).

    Stop words are interleaved with the head; generated words fill the long
    tail; frequencies follow Zipf's law over the ranks.
    """
    rng = random.Random(20251114)
    content = list(dict.fromkeys(REAL_WORDS))
    seen = set(content) | set(STOPWORDS)
    while len(content) + len(STOPWORDS) < VOCABULARY_SIZE:
        syllables = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.randint(1, 3))]
        word = "".join(syllables) + rng.choice(_FINALS)
        if word not in seen:
            seen.add(word)
            content.append(word)
    head = [w for pair in zip(STOPWORDS, content[: len(STOPWORDS)], strict=True) for w in pair]
    ranked = (*head, *content[len(STOPWORDS) :])
    return Vocabulary.from_frequencies(
        (word, 1.0 / rank**1.05) for rank, word in enumerate(ranked, start=1)
    )


def sentence_text(rng: random.Random, mean_words: int, vocabulary: Vocabulary | None = None) -> str:
    """Sentences of words drawn from ``vocabulary`` (default :func:`synthetic`), about
    ``mean_words`` long in all."""
    count = max(1, int(rng.lognormvariate(0, 0.5) * mean_words))
    drawn = (vocabulary or synthetic()).draw(rng, count)
    sentences = []
    for start in range(0, count, 12):
        chunk = drawn[start : start + 12]
        sentences.append(chunk[0].capitalize() + " " + " ".join(chunk[1:]) + ".")
    return " ".join(sentences).replace(" .", ".")


@dataclass
class _Batch:
    """COPY text for each table, for one slice of threads."""

    tables: dict[str, io.StringIO] = field(
        default_factory=lambda: {name: io.StringIO() for name in COPY_ORDER}
    )

    def row(self, table: str, *values: object) -> None:
        self.tables[table].write("\t".join(map(copy_value, values)) + "\n")


COPY_ORDER: dict[str, str] = {
    "threads": "thread_id, vlab_id, project_id, title, creation_date, update_date, user_id",
    "messages": "message_id, creation_date, content, thread_id, entity, is_complete",
    "tool_calls": "tool_call_id, name, arguments, validated, message_id",
    "tool_selection": "id, message_id, tool_name",
    "token_consumption": "id, message_id, type, task, count, model",
    "complexity_estimation": "id, complexity, model, reasoning, message_id",
}


class _Generator:
    """Deterministic rows for the whole database, produced slice by slice."""

    def __init__(self, messages: int, threads: int, seed: int, vocabulary: Vocabulary):
        self.rng = random.Random(seed)
        self.vocabulary = vocabulary
        self._pending: list[tuple[str, str, str]] = []
        self.messages = messages
        self.threads = threads
        users = max(1, threads // THREADS_PER_USER)
        self.users = [self._uuid() for _ in range(users)]
        self.projects = {
            user: [(self._uuid(), self._uuid()) for _ in range(self.rng.randint(1, 3))]
            for user in self.users
        }

    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def counts(self) -> list[int]:
        """Messages per thread: at least one each, the rest skewed (log-normal weights)."""
        weights = [self.rng.lognormvariate(0, 1) for _ in range(self.threads)]
        total = sum(weights)
        spare = self.messages - self.threads
        counts = [1 + int(spare * w / total) for w in weights]
        short = self.messages - sum(counts)
        for index in self.rng.sample(range(self.threads), short):
            counts[index] += 1
        return counts

    def batches(self) -> Iterator[_Batch]:
        counts = self.counts()
        for start in range(0, self.threads, _BATCH_THREADS):
            batch = _Batch()
            for count in counts[start : start + _BATCH_THREADS]:
                self._thread(batch, count)
            yield batch

    def _thread(self, batch: _Batch, count: int) -> None:
        rng = self.rng
        thread_id = self._uuid()
        user = rng.choice(self.users)
        vlab, project = rng.choice(self.projects[user]) if rng.random() < 0.8 else (None, None)
        created = _EPOCH - dt.timedelta(seconds=rng.uniform(0, 365 * 86400))
        moment = created
        for entity, calls in itertools.islice(self._conversation(), count):
            moment += dt.timedelta(seconds=rng.uniform(2, 240))
            self._message(batch, thread_id, entity, calls, moment)
        title = " ".join(self.vocabulary.draw(rng, rng.randint(2, 6))).capitalize()
        batch.row("threads", thread_id, vlab, project, title, created, moment, user)

    def _conversation(self) -> Iterator[tuple[str, int]]:
        """(entity, tool calls) of an endless conversation; the caller takes what it needs.

        A tool round is an ``AI_TOOL`` message carrying one or two calls, then
        one ``TOOL`` message per call.
        """
        while True:
            yield "USER", 0
            rounds = 0
            while rounds < 3 and self.rng.random() < (0.4 if rounds == 0 else 0.3):
                rounds += 1
                calls = self.rng.choice((1, 1, 1, 2))
                yield "AI_TOOL", calls
                yield from [("TOOL", 0)] * calls
            yield "AI_MESSAGE", 0

    def _message(
        self, batch: _Batch, thread_id: uuid.UUID, entity: str, calls: int, when: dt.datetime
    ) -> None:
        rng = self.rng
        message_id = self._uuid()
        if entity == "USER":
            document: dict[str, Any] = {"role": "user", "content": self._text(18)}
            self._user_children(batch, message_id)
        elif entity == "AI_MESSAGE":
            document = {"role": "assistant", "content": self._text(60)}
            self._tokens(batch, message_id, "CHAT_COMPLETION")
        elif entity == "AI_TOOL":
            self._pending = [self._tool_call(batch, message_id) for _ in range(calls)]
            document = {
                "role": "assistant",
                "content": self._text(8) if rng.random() < 0.3 else "",
                "tool_calls": [
                    {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
                    for cid, name, args in self._pending
                ],
            }
            self._tokens(batch, message_id, "CHAT_COMPLETION")
        else:
            call_id, name, _ = self._pending.pop(0)
            document = {
                "role": "tool",
                "tool_call_id": call_id,
                "name": name,
                "content": self._text(45),
            }
            if rng.random() < 0.1:
                self._tokens(batch, message_id, "CALL_WITHIN_TOOL")
        complete = rng.random() > 0.01
        batch.row("messages", message_id, when, json.dumps(document), thread_id, entity, complete)

    def _text(self, mean_words: int) -> str:
        return sentence_text(self.rng, mean_words, self.vocabulary)

    def _tool_call(self, batch: _Batch, message_id: uuid.UUID) -> tuple[str, str, str]:
        rng = self.rng
        call_id = "call_" + "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=24))
        name = rng.choice(TOOLS)
        arguments = json.dumps({"query": " ".join(self.vocabulary.draw(rng, rng.randint(2, 6)))})
        validated = rng.choice((None, None, None, True, True, False))
        batch.row("tool_calls", call_id, name, arguments, validated, message_id)
        return call_id, name, arguments

    def _user_children(self, batch: _Batch, message_id: uuid.UUID) -> None:
        rng = self.rng
        for tool in rng.sample(TOOLS, rng.choice((0, 1, 1, 2, 2, 3))):
            batch.row("tool_selection", self._uuid(), message_id, tool)
        if rng.random() < 0.9:
            reasoning = rng.choice(REASONING) if rng.random() < 0.7 else None
            batch.row(
                "complexity_estimation",
                self._uuid(),
                rng.randint(0, 10),
                rng.choice(MODELS),
                reasoning,
                message_id,
            )
            self._tokens(batch, message_id, "TOOL_SELECTION")

    def _tokens(self, batch: _Batch, message_id: uuid.UUID, task: str) -> None:
        rng = self.rng
        model = rng.choice(MODELS)
        kinds = ["INPUT_NONCACHED", "COMPLETION"]
        if rng.random() < 0.6:
            kinds.insert(1, "INPUT_CACHED")
        for kind in kinds:
            count = rng.randint(20, 400) if kind == "COMPLETION" else rng.randint(500, 20_000)
            batch.row("token_consumption", self._uuid(), message_id, kind, task, count, model)


def build(
    url: str,
    messages: int = 1_000_000,
    threads: int = 100_000,
    seed: int = 0,
    vocabulary: Vocabulary | None = None,
) -> None:
    """Migrate the empty database at ``url`` to the baseline and fill it.

    Message text comes from ``vocabulary``, by default :func:`synthetic`.

    ``threads`` is capped at one per ``MESSAGES_PER_THREAD`` messages (at
    least one), so small builds keep realistic conversations.
    """
    threads = min(threads, max(1, messages // MESSAGES_PER_THREAD))
    with Runner(url) as runner:
        runner.migrate(BASELINE)
    generator = _Generator(messages, threads, seed, vocabulary or synthetic())
    # Rows are generated in a thread while the server ingests the previous slice.
    produced: queue.Queue[_Batch | BaseException | None] = queue.Queue(maxsize=2)

    def produce() -> None:
        try:
            for batch in generator.batches():
                produced.put(batch)
            produced.put(None)
        except BaseException as exc:
            produced.put(exc)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cursor:
            # One GIN build at the end is far cheaper than a million index insertions.
            cursor.execute("DROP INDEX ix_messages_search_vector")
            while (batch := produced.get()) is not None:
                if isinstance(batch, BaseException):
                    raise batch
                for table, columns in COPY_ORDER.items():
                    buffer = batch.tables[table]
                    buffer.seek(0)
                    cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)
            cursor.execute(
                "CREATE INDEX ix_messages_search_vector ON messages USING gin (search_vector)"
            )
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    finally:
        conn.close()
        worker.join()


def row_counts(url: str) -> dict[str, int]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cursor:
            counts = {}
            for table in COPY_ORDER:
                cursor.execute(f"SELECT count(*) FROM {table}")
                counts[table] = cursor.fetchone()[0]
            return counts
    finally:
        conn.close()
