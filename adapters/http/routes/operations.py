"""Operations endpoints (liveness, readiness, Prometheus metrics) and the interface limits.

:func:`install_operations` is the one entry point: it adds ``GET /healthz``,
``GET /readyz`` and ``GET /metrics`` to an application and wraps it in the middlewares of
:mod:`adapters.http.middleware` (request id, access log and metrics, body size limit,
JSON-only bodies). The three endpoints need no authentication: they answer with states
and counts, never with personal data, and a failed check is named, not explained by its
exception text.

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
from service import AkteService

OPERATIONS_TAG: Final = "operations"
LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})
CHECK_PASSED: Final = "ok"

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
    """A readiness check made of a name and a function."""

    name: str
    check: Callable[[], str | None]

    def __call__(self) -> str | None:
        return self.check()


@dataclass(frozen=True)
class StoreReachable:
    """The event store answers a query (the highest notification id)."""

    service: AkteService
    name: str = "store"

    def __call__(self) -> str | None:
        try:
            self.service.recorder.max_notification_id()
        except Exception as error:
            # The type only: the message of a database error may quote stored values.
            logger.warning("readiness: event store unreachable (%s)", type(error).__qualname__)
            return "store unreachable"
        return None


class EventLogSize:
    """Collects ``akte_events_in_log`` on each scrape from the shared event log.

    It reads the highest notification id, so it counts the events every process has
    written (PostgreSQL may leave gaps after failed transactions, so it is an upper
    bound). When the store cannot be read, the metric is left out of that scrape.
    """

    def __init__(self, service: AkteService) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        try:
            highest = self._service.recorder.max_notification_id()
        except Exception as error:
            logger.warning("metrics: event store unreadable (%s)", type(error).__qualname__)
            return
        yield GaugeMetricFamily(
            "akte_events_in_log",
            "Events in the event log, written by any process (its highest notification id).",
            value=highest or 0,
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


def _operations_router(registry: CollectorRegistry, checks: Sequence[ReadinessCheck]) -> APIRouter:
    # Public: states and counts only. A token, if sent, must still be valid.
    router = APIRouter(
        tags=[OPERATIONS_TAG],
        dependencies=[Depends(allow_public(Permission.OPERATIONS_READ))],
    )

    # No store access and no blocking work: a coroutine, off the thread pool, so that
    # it answers even when every worker thread waits on the store.
    @router.get("/healthz", summary="Liveness")
    async def healthz() -> HealthPublic:
        """The process is up and answering; does not touch the event store."""
        return HealthPublic()

    # Blocking calls into the store: a plain function, run in the thread pool.
    @router.get(
        "/readyz",
        summary="Readiness",
        response_model=ReadinessPublic,
        responses={503: {"description": "A check failed; `checks` names it."}},
    )
    def readyz() -> JSONResponse:
        """Ready for requests: the event store is reachable and every other check passes."""
        outcomes = {check.name: _run(check) for check in checks}
        results = {name: trouble or CHECK_PASSED for name, trouble in outcomes.items()}
        failed = [f"{name} ({trouble})" for name, trouble in outcomes.items() if trouble]
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

    def __call__(self, request: Request, credentials: BearerCredentials) -> None:
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
    def metrics(request: Request) -> Response:
        """Request counts and durations by route template, and the event log's size."""
        encode, media_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(registry), media_type=media_type)

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

    checks: list[ReadinessCheck] = [StoreReachable(service), *readiness_checks]
    app.include_router(_operations_router(registry, checks))
    app.include_router(_metrics_router(registry))
    add_interface_middlewares(
        app,
        metrics=metrics,
        max_body_bytes=max_body_bytes,
        max_body_bytes_by_path=max_body_bytes_by_path,
        accepted_media_types=JSON_ONLY,
        accepted_media_types_by_path=accepted_media_types_by_path,
    )
