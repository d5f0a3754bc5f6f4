"""Redrive dead letters on AWS: plan, then execute.

A letter names an object version that failed. Redriving processes the object *as it is
now*: if it was fixed (re-uploaded under the same key) the new version is processed; if
it is unchanged, its ``failed`` marker is reopened first so the version can settle
anew. A message is deleted from the DLQ only when every letter in it settled as
processed or duplicate; otherwise it stays, with a line saying why.

The redrive pipeline sends no new dead letters: a letter that fails again is simply
left where it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dockline import redrive as core
from dockline.aws.deadletters import SHAPE_UNRECOGNISED, HeldMessage, SQSDeadLetters, letters_from_message
from dockline.aws.errors import error_code, http_status, translate
from dockline.aws.outputs import OUTPUT_TABLE, OUTPUT_TOPIC
from dockline.aws.refs import version_of
from dockline.aws.runtime import (
    ENV_TABLE,
    ENV_TOPIC,
    AwsEngine,
    Clients,
    build_engine,
    stack_outputs,
    utc_now,
)
from dockline.errors import DocklineError
from dockline.models import DeadLetter, ObjectRef
from dockline.pipeline import iso
from dockline.redrive import RedriveStep

HOLD_SECONDS = 900  # letters being redriven stay hidden this long (at most), then reappear


def current_version(letter: DeadLetter, s3: Any) -> tuple[ObjectRef | None, str]:
    """The object's current version, or None and why it cannot be read.

    Raises TransientError (and DocklineError for unexpected S3 answers).
    """
    ref = letter.ref
    try:
        head = s3.head_object(Bucket=ref.bucket, Key=ref.key)
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound") or http_status(exc) == 404:
            return None, "the object no longer exists"
        if http_status(exc) == 403:
            return None, "access denied reading the object"
        raise translate(exc, f"looking up {ref.uri}") from exc
    except BotoCoreError as exc:
        raise translate(exc, f"looking up {ref.uri}") from exc
    version = version_of(etag=head.get("ETag"), version_id=head.get("VersionId"))
    if version == ref.version:
        return ref, ""
    modified = head.get("LastModified")
    return (
        ObjectRef(
            bucket=ref.bucket,
            key=ref.key,
            version=version,
            size=head.get("ContentLength"),
            event_time=iso(modified) if modified is not None else None,
        ),
        "",
    )


def plan(letters: Sequence[DeadLetter], ids: list[str] | None, s3: Any) -> list[RedriveStep]:
    """One step per selected letter (all when ``ids`` is None). Raises UsageError for
    an unknown id, TransientError."""

    def locate(letter: DeadLetter) -> tuple[ObjectRef | None, str]:
        if letter.extra.get("shape") == SHAPE_UNRECOGNISED:
            return None, "not a file reference; inspect it with `dlq show`"
        return current_version(letter, s3)

    return core.plan(letters, ids, locate)


def execute(
    steps: Sequence[RedriveStep], engine: AwsEngine, *, messages: Sequence[HeldMessage], dlq: SQSDeadLetters
) -> Iterator[core.Redriven]:
    """Carry out ``steps``; delete each message whose letters were all resolved.

    Yields one result per step. Errors of single steps are reported in its note;
    TransientError from the queue itself propagates.
    """
    resolved: dict[str, bool] = {}
    for done in core.execute(steps, engine.lifecycle, now=lambda: iso(utc_now())):
        letter = done.step.letter
        message_id = str(letter.extra.get("message_id") or letter.id.split("#", 1)[0])
        resolved[message_id] = resolved.get(message_id, True) and done.resolved
        yield done
    by_id = {m.message_id: m for m in messages}
    for message_id, ok in resolved.items():
        message = by_id.get(message_id)
        # A message naming several objects goes only when every one of them was redriven.
        if ok and message is not None and _all_selected(message, steps):
            dlq.delete(message)


def _all_selected(message: HeldMessage, steps: Sequence[RedriveStep]) -> bool:
    chosen = {step.letter.id for step in steps}
    return all(letter.id in chosen for letter in letters_from_message(message))


def engine_for_redrive(stack_name: str, settings: Any, clients: Clients) -> AwsEngine:
    """The pipeline the function runs, built on this machine: table and topic from
    ``TABLE_NAME``/``TOPIC_ARN`` if set, else from the stack's outputs. Raises DocklineError."""
    table, topic = os.environ.get(ENV_TABLE), os.environ.get(ENV_TOPIC)
    if not (table and topic):
        outputs = stack_outputs(stack_name, client=clients.cloudformation)
        table = table or outputs.get(OUTPUT_TABLE)
        topic = topic or outputs.get(OUTPUT_TOPIC)
    if not (table and topic):
        raise DocklineError(f"set {ENV_TABLE} and {ENV_TOPIC}, or deploy stack {stack_name!r} with its outputs")
    return build_engine(table_name=table, topic_arn=topic, dlq_url=None, settings=settings, clients=clients)


def redrive(
    queue_url: str,
    *,
    ids: list[str] | None,
    dry_run: bool,
    settings: Any,
    engine: AwsEngine | None = None,
    clients: Clients | None = None,
    wait_seconds: int = 1,
    hold_seconds: int = HOLD_SECONDS,
) -> Iterator[str]:
    """Plan and (unless ``dry_run``) redrive; one line per letter.

    Raises UsageError for unknown ids, DocklineError when the table, topic or queue
    cannot be found or read.
    """
    clients = clients or (engine.clients if engine else Clients())
    dlq = SQSDeadLetters(queue_url, client_factory=lambda: clients.sqs, aws=settings.aws, wait_seconds=wait_seconds)
    with dlq.held(hold_seconds) as messages:
        letters = [letter for m in messages for letter in letters_from_message(m, settings.aws)]
        letters.sort(key=lambda letter: letter.failed_at)
        steps = plan(letters, ids, clients.s3)
        if not steps:
            yield "no dead letters"
            return
        if dry_run:
            for step in steps:
                yield f"would {step.action}: {step.letter.ref.key or '?'} ({step.letter.id})"
            return
        engine = engine or engine_for_redrive(settings.aws.stack_name, settings, clients)
        for done in execute(steps, engine, messages=messages, dlq=dlq):
            step, outcome = done.step, done.outcome
            key = step.letter.ref.key or "?"
            if outcome is None:
                yield f"{key}: {step.action} -> left in the DLQ{': ' + done.note if done.note else ''}"
                continue
            reason = f": {outcome.error}" if outcome.error else ""
            kept = "" if done.resolved else " (left in the DLQ)"
            yield f"{key}: {step.action} -> {outcome.status}{reason}{kept}"
