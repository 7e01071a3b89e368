"""Operations endpoints (liveness, readiness, Prometheus metrics) and the interface limits.

:func:`install_operations` is the one entry point: it adds ``GET /healthz``,
``GET /readyz`` and ``GET /metrics`` to an application and wraps it in the middlewares of
:mod:`adapters.http.middleware` (request id, access log and metrics, body size limit,
JSON-only bodies). The three endpoints need no authentication: they answer with states
and counts, never with personal data, and a failed check is named, not explained by its
exception text.

None of the three waits for the server's shared worker threads, which the routes that
work on the stores use (:mod:`adapters.http.store_gate` keeps some of them free for the
rest): their access checks are coroutines, ``/healthz`` answers from memory, ``/readyz``
reads the store probe (at most 0.8 s, an answer reused for half a second: 503 within a
second of the store failing, 200 within a second of its return) and runs its other
checks each in a bounded call, and ``/metrics`` renders in a thread of its own with the
store's figures fetched within bounds (a figure the store cannot give in time is left
out of that scrape).

Metrics live in a registry per application (``app.state.metrics.registry``), not in the
process-wide default one, so that several applications in one process (tests) keep
their counts apart; later issues register their own collectors there (projection lag).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from pydantic import BaseModel, Field

from adapters.bounded import BoundedCall
from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import (
    AllowPublic,
    BearerCredentials,
    Permission,
    allow_public,
)
from adapters.http.middleware import (
    DEFAULT_MAX_BODY_BYTES,
    JSON_ONLY,
    HttpMetrics,
    add_interface_middlewares,
)
from adapters.http.problems import PROBLEM_MEDIA_TYPE, HttpProblem, problem_response
from adapters.http.store_gate import PROBE_TIMEOUT, StoreGate, store_health
from service import AkteService

OPERATIONS_TAG: Final = "operations"
LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})
CHECK_PASSED: Final = "ok"
CHECK_MAX_AGE: Final = 1.0
"""A readiness check's or a store figure's answer is reused this long (seconds)."""
FIGURE_TIMEOUT: Final = 0.5
"""The longest wait for a store figure of ``/metrics``."""
DEFAULT_STORE_REQUEST_SLOTS: Final = 32
DEFAULT_SLOT_WAIT_SECONDS: Final = 2.0

logger = logging.getLogger("akte.operations")


class ReadinessCheck(Protocol):
    """Something the service needs before it can take requests.

    Calling it returns ``None`` when all is well, otherwise a short text saying what is
    wrong (e.g. ``"12000 events behind"``). The text is shown to anyone who asks
    ``/readyz``, so it must not hold personal data or exception messages.
    """

    @property
    def name(self) -> str: ...

    def __call__(self) -> str | None: ...


@dataclass(frozen=True)
class NamedCheck:
    """A readiness check made of a name and a function. ``informational``: its text is
    shown in ``checks`` but never makes the service unready (a read replica that is
    down: the primary answers its reads)."""

    name: str
    check: Callable[[], str | None]
    informational: bool = False

    def __call__(self) -> str | None:
        return self.check()


class EventLogSize:
    """Collects ``akte_events_in_log`` on each scrape from the shared event log.

    It reads the highest notification id, so it counts the events every process has
    written (PostgreSQL may leave gaps after failed transactions, so it is an upper
    bound). When the store cannot be read, the metric is left out of that scrape.
    """

    def __init__(self, service: AkteService) -> None:
        self._highest = BoundedCall(
            service.recorder.max_notification_id,
            timeout=FIGURE_TIMEOUT,
            max_age=0.0,
            name="events-in-log",
        )

    def collect(self) -> Iterator[Metric]:
        outcome = self._highest()
        if not outcome.ok:
            logger.warning("metrics: event store unreadable (%s)", outcome.problem)
            return
        yield GaugeMetricFamily(
            "akte_events_in_log",
            "Events in the event log, written by any process (its highest notification id).",
            value=outcome.value or 0,
        )


class HealthPublic(BaseModel):
    status: Literal["ok"] = "ok"


class ReadinessPublic(BaseModel):
    status: Literal["ready"] = "ready"
    checks: dict[str, str] = Field(
        description=f'Each check by name: `"{CHECK_PASSED}"`, or what is wrong.',
        examples=[{"store": CHECK_PASSED}],
    )


def _run(check: ReadinessCheck) -> str | None:
    try:
        return check()
    except Exception as error:
        logger.warning("readiness: check %s raised %s", check.name, type(error).__qualname__)
        return "check failed"


class _PublicOperations(AllowPublic):
    """:class:`AllowPublic` as a coroutine: FastAPI runs a plain function dependency in
    the shared worker threads, which the store can take (a token is verified in memory)."""

    async def __call__(  # type: ignore[override]
        self, request: Request, credentials: BearerCredentials
    ) -> Principal | None:
        return AllowPublic.__call__(self, request, credentials)


def _bounded(check: ReadinessCheck) -> tuple[str, BoundedCall[str | None]]:
    return check.name, BoundedCall(
        lambda: _run(check), timeout=PROBE_TIMEOUT, max_age=CHECK_MAX_AGE, name="readiness"
    )


def _operations_router(
    registry: CollectorRegistry,
    store: BoundedCall[None],
    checks: Sequence[ReadinessCheck],
) -> APIRouter:
    # Public: states and counts only. A token, if sent, must still be valid.
    access = allow_public(Permission.OPERATIONS_READ)
    router = APIRouter(
        tags=[OPERATIONS_TAG],
        dependencies=[Depends(_PublicOperations(access.permission))],
    )
    bounded_checks = [_bounded(check) for check in checks]
    notes = {check.name for check in checks if getattr(check, "informational", False)}

    # No store access and no blocking work: a coroutine, off the thread pool, so that
    # it answers even when every worker thread waits on the store.
    @router.get("/healthz", summary="Liveness")
    async def healthz() -> HealthPublic:
        """The process is up and answering; does not touch the event store."""
        return HealthPublic()

    # Bounded calls into the store, in threads of their own: never the shared pool.
    @router.get(
        "/readyz",
        summary="Readiness",
        response_model=ReadinessPublic,
        responses={503: {"description": "A check failed; `checks` names it."}},
    )
    async def readyz() -> JSONResponse:
        """Ready for requests: the event store is reachable and every other check passes."""
        # Probed now (or joining a probe in flight): the state as of this request.
        probed = await store.call(cached=False)
        outcomes: dict[str, str | None] = {"store": None}
        if not probed.ok:
            logger.warning("readiness: event store unreachable (%s)", probed.problem)
            outcomes["store"] = "store not answering" if probed.timed_out else "store unreachable"
        for name, bounded in bounded_checks:
            if not probed.ok:
                outcomes[name] = "not checked: store unreachable"
                continue
            checked = await bounded.call(cached=False)
            outcomes[name] = checked.value if checked.ok else f"check {checked.problem}"
        results = {name: trouble or CHECK_PASSED for name, trouble in outcomes.items()}
        failed = [
            f"{name} ({trouble})"
            for name, trouble in outcomes.items()
            if trouble and name not in notes
        ]
        if not failed:
            return JSONResponse(ReadinessPublic(checks=results).model_dump(mode="json"))
        problem = problem_response(
            503, "not-ready", "not ready: " + "; ".join(failed), title="Not ready"
        )
        # RFC 9457 extension member: every check's outcome, for monitoring to read.
        body = json.loads(bytes(problem.body)) | {"checks": results}
        return JSONResponse(body, status_code=503, media_type=PROBLEM_MEDIA_TYPE)

    return router


class MetricsAccess(AllowPublic):
    """Who may read ``/metrics``: with ``AKTE_METRICS_TOKEN`` set, whoever sends it as a
    bearer token; without it, the machine itself in production (its monitoring agent, or
    the reverse proxy's own checks), anyone in development. The counts hold no personal
    data, but route timings and store sizes are nobody else's business."""

    async def __call__(  # type: ignore[override]
        self, request: Request, credentials: BearerCredentials
    ) -> None:
        settings = request.app.state.settings
        token = settings.metrics_token
        if token is not None:
            sent = credentials.credentials if credentials is not None else ""
            if not hmac.compare_digest(sent.encode(), token.get_secret_value().encode()):
                raise HttpProblem(
                    401,
                    "unauthenticated",
                    "/metrics needs the monitoring token: Authorization: Bearer <token>",
                    headers={"WWW-Authenticate": 'Bearer realm="akte-metrics"'},
                )
            return
        client = request.client.host if request.client is not None else ""
        if settings.deployment == "production" and client not in LOOPBACK:
            raise HttpProblem(
                403,
                "forbidden",
                "/metrics answers only this machine; set AKTE_METRICS_TOKEN to scrape it "
                "from elsewhere",
            )


_RENDERING = anyio.CapacityLimiter(2)
"""Threads that render /metrics (not the shared pool the store routes use)."""


def _metrics_router(registry: CollectorRegistry) -> APIRouter:
    router = APIRouter(
        tags=[OPERATIONS_TAG],
        dependencies=[Depends(MetricsAccess(Permission.OPERATIONS_READ))],
    )

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text format (OpenMetrics when asked for).",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def metrics(request: Request) -> Response:
        """Request counts and durations by route template, and the event log's size."""
        encode, media_type = choose_encoder(request.headers.get("accept", ""))
        body = await anyio.to_thread.run_sync(encode, registry, limiter=_RENDERING)
        return Response(body, media_type=media_type)

    return router


def install_operations(
    app: FastAPI,
    service: AkteService,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    readiness_checks: Sequence[ReadinessCheck] = (),
    max_body_bytes_by_path: Mapping[str, int] | None = None,
    accepted_media_types_by_path: Mapping[str, Collection[str]] | None = None,
) -> None:
    """Adds ``/healthz``, ``/readyz``, ``/metrics`` and the interface middlewares.

    Call it last when building the application: its middlewares go outside those added
    before (the problem handlers'), so that request ids, the access log and the metrics
    cover every answer, 500s included. ``max_body_bytes_by_path`` and
    ``accepted_media_types_by_path`` map path patterns (``/cases/{case_id}/uploads``) to
    another size limit or other body types than JSON, for upload routes.
    """
    registry = CollectorRegistry()
    # The process collectors are process-wide but read-only; registering them here
    # puts memory, CPU and GC figures next to the application's own.
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    metrics = HttpMetrics(registry)
    registry.register(EventLogSize(service))
    app.state.metrics = metrics

    settings = getattr(app.state, "settings", None)
    health = store_health(service, settings)
    app.state.store_health = health
    app.include_router(_operations_router(registry, health, readiness_checks))
    app.include_router(_metrics_router(registry))
    # Inside the interface middlewares (added after it): its 503s are logged and counted.
    app.add_middleware(
        StoreGate,
        health=health,
        slots=getattr(settings, "store_request_slots", DEFAULT_STORE_REQUEST_SLOTS),
        slot_wait=float(
            getattr(settings, "postgres_pool_timeout_seconds", DEFAULT_SLOT_WAIT_SECONDS)
        ),
    )
    add_interface_middlewares(
        app,
        metrics=metrics,
        max_body_bytes=max_body_bytes,
        max_body_bytes_by_path=max_body_bytes_by_path,
        accepted_media_types=JSON_ONLY,
        accepted_media_types_by_path=accepted_media_types_by_path,
    )
