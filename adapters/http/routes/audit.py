"""Tamper evidence over HTTP: ``GET /audit/verify`` recomputes the event log's hash chains.

The same check as ``akte audit verify`` (:mod:`adapters.store.hash_chain`): both chains over
the whole log, the first broken links with stream (originator id), version and
notification id. The answer holds ids, positions and hashes only, never personal data,
so the head of office may ask as well as auditors. It reads the whole log: expect it to
take seconds on a large store (see ``docs/performance/audit.md``).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Annotated, Final

import psycopg
from eventsourcing.persistence import PersistenceError
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission, require
from adapters.http.deps import ServiceDep
from adapters.http.problems import HttpProblem
from adapters.http.route_helpers import READ_PROBLEMS
from adapters.http.schemas.lawful import Line
from adapters.store.hash_chain import Anchor, ChainSource, Finding, VerifyReport, verify_chains
from service_common import StoreUnavailable

MAX_ANCHORS: Final = 20
MAX_FINDINGS: Final = 200

router = APIRouter(prefix="/audit", tags=["audit"])

Verifier = Annotated[Principal, Depends(require(Permission.AUDIT_VERIFY))]


class BreakPublic(BaseModel):
    """A broken link of a hash chain, and where."""

    kind: Annotated[
        str,
        Field(
            description="content_changed, order_swapped, event_missing, "
            "event_deleted_with_entry, link_missing, version_gap, unchained_event, "
            "entry_mismatch or anchor_mismatch.",
            examples=["content_changed"],
        ),
    ]
    notification_id: Annotated[int, Field(description="The event's position in the log.")]
    stream: Annotated[str, Field(description="The originator id (e.g. the case file's id).")]
    version: Annotated[int, Field(description="The event's version in its stream.")]
    chain: Annotated[str, Field(description="Which chain found it: log, stream or both.")]
    detail: str


class SealPublic(BaseModel):
    up_to_notification_id: Annotated[
        int,
        Field(
            description="Events up to here were chained when tamper evidence was introduced, "
            "not when they were written."
        ),
    ]
    at: datetime


class VerifyPublic(BaseModel):
    """The result of recomputing both hash chains over the whole event log."""

    ok: bool
    events: int
    chain_entries: int
    head: Annotated[
        str,
        Field(
            description="`NOTIFICATION_ID:LOG_HASH` of the last chain entry: keep it outside "
            "the database and pass it later as `anchor`."
        ),
    ]
    sealed: SealPublic | None
    anchors: list[str]
    first_break: BreakPublic | None
    breaks: list[BreakPublic]
    more_breaks: bool
    seconds: float
    events_per_second: int


@router.get("/verify", responses=READ_PROBLEMS)
def verify_log(
    caller: Verifier,
    service: ServiceDep,
    anchor: Annotated[
        list[Line] | None,
        Query(
            max_length=MAX_ANCHORS,
            description="Heads of earlier verifications (`NID:HASH`): the log must still "
            "pass through each.",
        ),
    ] = None,
    max_breaks: Annotated[
        int, Query(ge=1, le=MAX_FINDINGS, description="Broken links listed at most.")
    ] = 20,
) -> VerifyPublic:
    """Recompute the event log's hash chains and report the first broken links."""
    try:
        anchors = [Anchor.parse(text) for text in anchor or ()]
    except ValueError as error:
        raise HttpProblem(422, "invalid-value", f"anchor: {error}") from None
    source: ChainSource = service.recorder  # type: ignore[assignment]
    try:
        report = verify_chains(source, max_findings=max_breaks, anchors=anchors)
    except (PersistenceError, psycopg.Error, sqlite3.Error):
        raise StoreUnavailable("the event store failed while verifying") from None
    return _public(report)


def _public(report: VerifyReport) -> VerifyPublic:
    return VerifyPublic(
        ok=report.ok,
        events=report.events,
        chain_entries=report.entries,
        head=report.head,
        sealed=None
        if report.seal is None
        else SealPublic(up_to_notification_id=report.seal.sealed_up_to, at=report.seal.sealed_at),
        anchors=report.anchors,
        first_break=None if report.first is None else _break(report.first),
        breaks=[_break(finding) for finding in report.findings],
        more_breaks=report.more_findings,
        seconds=round(report.seconds, 3),
        events_per_second=round(report.events_per_second),
    )


def _break(finding: Finding) -> BreakPublic:
    return BreakPublic(
        kind=finding.kind.value,
        notification_id=finding.notification_id,
        stream=finding.stream,
        version=finding.version,
        chain=finding.chain,
        detail=finding.detail,
    )
