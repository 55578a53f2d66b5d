"""The Peewee models read and write the baseline schema faithfully."""

from __future__ import annotations

import shutil
import uuid

import pytest

from chatdb.api.chats import add_message
from chatdb.migrate.executor import Runner
from chatdb.schema import models
from chatdb.schema.content import prepare_content
from chatdb.schema.enums import Entity, ReasoningLevels, Task, TokenType
from tests.conftest import MIGRATIONS, REPO, run_cli


@pytest.fixture
def bound(db_url):
    with Runner(db_url, MIGRATIONS) as runner:
        runner.migrate()
        models.bind(runner.database)
        yield runner.database


def _thread() -> models.Thread:
    return models.Thread.create(title="t", user_id=uuid.uuid4())


def test_round_trip_types(bound):
    thread = _thread()
    message = models.Message.create(
        thread=thread,
        content='{"role": "user", "content": "hello neurons"}',
        entity=Entity.USER,
        is_complete=True,
    )
    models.TokenConsumption.create(
        message=message, type="INPUT_CACHED", task=Task.CALL_WITHIN_TOOL, count=3, model="m"
    )
    models.ComplexityEstimation.create(message=message, model="m", reasoning=None)

    read = models.Message.get_by_id(message.message_id)
    assert isinstance(read.message_id, uuid.UUID)
    assert read.entity is Entity.USER
    assert read.creation_date.tzinfo is not None
    assert read.creation_date == message.creation_date  # the same instant, aware
    assert "neuron" in read.search_vector
    usage = models.TokenConsumption.get()
    assert usage.type is TokenType.INPUT_CACHED and usage.task is Task.CALL_WITHIN_TOOL
    assert models.ComplexityEstimation.get().reasoning is None
    assert list(models.Message.select().where(models.Message.entity == "USER")) == [read]


@pytest.mark.parametrize("bad", ["user", "SYSTEM", 1, ReasoningLevels.HIGH])
def test_enum_field_rejects_anything_but_a_member_or_label(bound, bad):
    thread = _thread()
    said = "Message.entity: .* is not a label of Entity; expected one of USER, AI_TOOL, TOOL,"
    with pytest.raises(ValueError, match=said):
        models.Message.create(thread=thread, content="{}", entity=bad, is_complete=True)
    assert models.Message.select().count() == 0


def test_every_enum_check_says_the_same():
    """The column, the content check and the bulk append coerce labels through one function."""
    entity = "Message.entity: 'ROBOT' is not a label of Entity; expected one of USER, AI_TOOL"
    token = (
        "TokenConsumption.type: 'OUTPUT' is not a label of TokenType; expected one of "
        "INPUT_NONCACHED, INPUT_CACHED, COMPLETION"
    )
    checks = [
        (entity, lambda: models.Message._meta.fields["entity"].db_value("ROBOT")),
        (entity, lambda: prepare_content("ROBOT", "{}")),
        (token, lambda: models.TokenConsumption._meta.fields["type"].db_value("OUTPUT")),
        (token, lambda: add_message(uuid.uuid4(), "USER", "{}", token_usage=[_usage("OUTPUT")])),
    ]
    for said, check in checks:
        with pytest.raises(ValueError) as raised:
            check()
        assert said in str(raised.value)
    assert models.Message._meta.fields["entity"].db_value(Entity.TOOL) == "TOOL"
    assert models.TokenConsumption._meta.fields["type"].db_value("COMPLETION") == "COMPLETION"


def _usage(kind: str) -> dict[str, object]:
    return {"model": "m", "task": "CHAT_COMPLETION", "type": kind, "count": 1}


def test_enum_members_are_the_database_labels():
    assert [m.name for m in Entity] == ["USER", "AI_TOOL", "TOOL", "AI_MESSAGE"]
    assert models.Message.entity.field_type == "entity"
    assert models.TokenConsumption.type.field_type == "tokentype"
    assert models.ComplexityEstimation.reasoning.field_type == "reasoninglevels"


def test_pw_migrate_create_auto_refuses_and_points_to_chatdb_create(db_url, tmp_path):
    """Autodetection by field names misses enum labels and defaults: it must not write a file."""
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, directory)
    before = sorted(p.name for p in directory.iterdir())
    result = run_cli(
        "create",
        "--auto",
        "--auto-source",
        "chatdb.schema.models",
        "--directory",
        str(directory),
        "--database",
        db_url,
        "probe",
        program="pw_migrate",
        cwd=REPO,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: pw_migrate create --auto does not see enum labels, server defaults or "
        "lock-safe DDL in chatdb's models; run `chatdb create NAME` instead"
    ]
    assert sorted(p.name for p in directory.iterdir()) == before
