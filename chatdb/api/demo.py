"""A small, realistic demo data set: a few conversations with a neuroscience assistant.

Loaded by ``chatdb demo`` into an empty database, so that search, the thread
listing and token accounting have something true-to-life to show. The ids of
the demo user and project are fixed, so the README's examples can name them.
"""

from __future__ import annotations

import datetime as dt
import uuid

from chatdb.api.chats import NewMessage, TokenUsageIn, add_messages
from chatdb.schema.enums import Entity, ReasoningLevels, Task, TokenType
from chatdb.schema.models import Message, Thread, utc_now

DEMO_USER = uuid.UUID("5eed0000-0000-4000-8000-000000000001")
OTHER_USER = uuid.UUID("5eed0000-0000-4000-8000-000000000002")
DEMO_VLAB = uuid.UUID("5eed0000-0000-4000-8000-0000000000aa")
DEMO_PROJECT = uuid.UUID("5eed0000-0000-4000-8000-0000000000bb")
EXAMPLE_QUERY = "neurons fire"
MODEL = "gpt-4o-mini"

# (user, title, turns); a turn is (user question, tool name or None, tool result, answer).
CONVERSATIONS: tuple[tuple[uuid.UUID, str, tuple[tuple[str, str | None, str, str], ...]], ...] = (
    (
        DEMO_USER,
        "Firing rates in the somatosensory cortex",
        (
            (
                "How fast do cortical neurons fire in the rat somatosensory cortex?",
                "literature-search",
                "3 papers: spontaneous rates of 0.1-5 Hz in layer 2/3 pyramidal cells; "
                "fast-spiking interneurons above 20 Hz.",
                "Most pyramidal neurons in rat barrel cortex fire sparsely, around 0.1 to 5 "
                "spikes per second at rest, while fast-spiking parvalbumin interneurons can "
                "sustain rates above 20 Hz.",
            ),
            (
                "Does that change during whisker stimulation?",
                None,
                "",
                "Yes: a whisker deflection evokes a brief burst, so layer 4 neurons in the "
                "principal barrel respond within 10 ms, and firing returns to baseline after "
                "about 50 ms.",
            ),
        ),
    ),
    (
        DEMO_USER,
        "Morphology of layer 5 pyramidal cells",
        (
            (
                "Find reconstructed morphologies of thick-tufted layer 5 pyramidal cells.",
                "entity-core-morphology-search",
                "12 reconstructions found, species: rat, brain region: SSp, mtype: L5_TPC:A.",
                "I found 12 reconstructed morphologies of thick-tufted layer 5 pyramidal "
                "cells from rat somatosensory cortex; their apical dendrites reach layer 1.",
            ),
            (
                "Which one has the longest apical dendrite?",
                "morphometrics",
                "max total apical length: 14.2 mm (cell C060114A5).",
                "Cell C060114A5 has the longest apical dendrite, 14.2 mm in total.",
            ),
        ),
    ),
    (
        DEMO_USER,
        "Simulating a hippocampal CA1 circuit",
        (
            (
                "Can I simulate theta oscillations in a CA1 microcircuit?",
                "simulation-config",
                "template: CA1 microcircuit, 456 neurons, theta drive from medial septum.",
                "Yes. Start from the CA1 microcircuit template, drive it with rhythmic input "
                "at 8 Hz from the medial septum, and record the local field potential.",
            ),
        ),
    ),
    (
        OTHER_USER,
        "Ion channels of interneurons",
        (
            (
                "Which potassium channels shape the fast spikes of basket cells?",
                "literature-search",
                "Kv3.1 and Kv3.2 channels; fast deactivation supports high-frequency firing.",
                "Kv3 potassium channels repolarise basket cell spikes quickly, which is what "
                "lets these interneurons fire at high frequency.",
            ),
        ),
    ),
)


def is_empty() -> bool:
    """Whether the database holds no messages yet."""
    return not Message.select().exists()


def load() -> int:
    """Write the demo conversations; the number of messages written."""
    started = utc_now() - dt.timedelta(days=len(CONVERSATIONS))
    messages: list[NewMessage] = []
    for number, (user, title, turns) in enumerate(CONVERSATIONS):
        clock = started + dt.timedelta(days=number)
        thread = Thread.create(
            user_id=user,
            title=title,
            vlab_id=DEMO_VLAB,
            project_id=DEMO_PROJECT,
            creation_date=clock,
            update_date=clock,
        )
        for question, tool, result, answer in turns:
            for new in _turn(question, tool, result, answer):
                clock += dt.timedelta(seconds=7)
                messages.append({**new, "thread_id": thread.thread_id, "creation_date": clock})
    add_messages(messages)
    return len(messages)


def _turn(question: str, tool: str | None, result: str, answer: str) -> list[NewMessage]:
    """The messages of one exchange, with the tool selection, call, result and tokens."""
    turn: list[NewMessage] = [
        {
            "entity": Entity.USER,
            "content": {"role": "user", "content": question},
            "complexity": {
                "model": MODEL,
                "complexity": 3 if tool else 1,
                "reasoning": ReasoningLevels.LOW if tool else ReasoningLevels.MINIMAL,
            },
        }
    ]
    if tool:
        call_id = f"call_{uuid.uuid5(uuid.NAMESPACE_URL, question).hex[:20]}"
        arguments = {"query": question}
        turn.append(
            {
                "entity": Entity.AI_TOOL,
                "content": {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"id": call_id, "function": {"name": tool}}],
                },
                "tool_calls": [
                    {"id": call_id, "name": tool, "arguments": arguments, "validated": True}
                ],
                "selected_tools": [tool],
                "token_usage": _tokens(Task.TOOL_SELECTION, 850, 120, 40),
            }
        )
        turn.append(
            {
                "entity": Entity.TOOL,
                "content": {"role": "tool", "tool_call_id": call_id, "content": result},
            }
        )
    turn.append(
        {
            "entity": Entity.AI_MESSAGE,
            "content": {"role": "assistant", "content": answer},
            "token_usage": _tokens(Task.CHAT_COMPLETION, 1400, 600, len(answer.split()) * 2),
        }
    )
    return turn


def _tokens(task: Task, fresh: int, cached: int, completion: int) -> list[TokenUsageIn]:
    return [
        {"model": MODEL, "task": task, "type": TokenType.INPUT_NONCACHED, "count": fresh},
        {"model": MODEL, "task": task, "type": TokenType.INPUT_CACHED, "count": cached},
        {"model": MODEL, "task": task, "type": TokenType.COMPLETION, "count": completion},
    ]
