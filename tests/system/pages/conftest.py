"""A live Akte on SQLite and a headless Debian Chromium for the public pages' tests.

One server and one browser for the whole session (starting either takes about a second);
each test gets a fresh browser context (no cookies, so no remembered language) and a page
whose every request is watched by a :class:`~tests.support.browser.Guard`: a request to
another host than the live server (or the payment stand-in, once a test allows it) is
aborted and fails the test at teardown, as do script errors, console errors such as a
Content-Security-Policy violation, and sub-resources that failed to load.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import httpx2 as httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from adapters.bootstrap import build_app, build_service, open_service
from adapters.cli.appointments import clock_from
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.mail.mailbox import MailboxMailer
from adapters.payment.setup import DEVELOPMENT_SHARED_SECRET
from adapters.payment.stand_in import StandInServer
from adapters.settings import Settings
from adapters.simulation.demo_appointments import DemoAppointments, set_up_demo_appointments
from adapters.views.read_models import ReadModels
from adapters.views.runner import ApplicationEventLog, ProjectionRunner
from service_appointments import TickReport
from service_ports import OutgoingMail
from tests.support.appointments import OFFICE, POINT, RULES, TYPES
from tests.support.browser import MAIL_SUBJECT, Guard, PageOpener, chromium_path, origin_of
from tests.support.live_server import ServedApp

TickAt = Callable[[datetime], TickReport]
"""The ``tick_at`` fixture: the appointments' tick as if the clock showed a moment."""

DESKTOP_WIDTH, DESKTOP_HEIGHT = 1280, 900
PROOF_OF_WORK_BITS = 8
"""Low, so the booking page's proof-of-work script finishes at once in tests; the script
and its check run all the same."""
NO_RATE_LIMITS: Final[dict[str, Any]] = {
    name: None for name in Settings.model_fields if name.startswith("rate_limit_")
}
"""Every page of every test comes from 127.0.0.1: the per-address limits (tested with the
routes) would refuse the later tests' forms."""


@pytest.fixture(scope="session")
def stand_in() -> Iterator[StandInServer]:
    """The stand-in payment platform; a page reaches it only after ``guard.allow``."""
    with StandInServer(DEVELOPMENT_SHARED_SECRET.encode()) as server:
        yield server


@dataclass
class PinnedServedApp(ServedApp):
    """:class:`ServedApp` on a socket bound before the app was built: the mails' links
    name the server's own address (``public_base_url``), which must be known first."""

    listening: socket.socket | None = None

    def start(self) -> None:
        assert self.listening is not None
        self.base_url = f"http://127.0.0.1:{self.listening.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_config=None, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self.listening]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert self._thread.is_alive(), "uvicorn did not start"
            assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
            time.sleep(0.01)
        self.http = httpx.Client(base_url=self.base_url, trust_env=False, timeout=10)


@pytest.fixture(scope="session")
def listening() -> Iterator[socket.socket]:
    # IPPROTO_TCP spelled out, as in ServedApp: else every keep-alive request waits 40 ms.
    bound = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    bound.bind(("127.0.0.1", 0))
    try:
        yield bound
    finally:
        bound.close()


@pytest.fixture(scope="session")
def pages_settings(
    tmp_path_factory: pytest.TempPathFactory, stand_in: StandInServer, listening: socket.socket
) -> Settings:
    return Settings(
        store="sqlite",
        data_dir=tmp_path_factory.mktemp("pages") / "data",
        deployment="development",
        public_base_url=f"http://127.0.0.1:{listening.getsockname()[1]}",
        payment_provider_url=stand_in.base_url,
        appointment_proof_of_work_bits=PROOF_OF_WORK_BITS,
        mail_delivery="mailbox",
        json_logs=False,
        log_level="WARNING",
        **NO_RATE_LIMITS,
    )


@pytest.fixture(scope="session")
def live(pages_settings: Settings, listening: socket.socket) -> Iterator[ServedApp]:
    """Akte on SQLite in a temporary directory; its mails go to the development mailbox."""
    service = build_service(pages_settings)
    served = PinnedServedApp(build_app(pages_settings, service), service, listening=listening)
    served.start()
    try:
        yield served
    finally:
        served.stop()
        service.close()


@pytest.fixture(scope="session")
def service_point(live: ServedApp) -> str:
    """The office's service point with the test appointment types (extend a title, pick up
    a card: for residence card holders; a Fiktionsbescheinigung: for its holders)."""
    live.service.appointments.define_service_point(
        office_id=OFFICE,
        code=POINT,
        name="Bürgerbüro Rathaus",
        rules=RULES,
        types=TYPES,
        by="tl-01",
    )
    return POINT


@pytest.fixture(scope="session")
def demo_desks(live: ServedApp, pages_settings: Settings) -> DemoAppointments:
    """The demo office's desks (``akte demo``): the Bürgerbüro, and the family-reunion
    desk booked out by fictitious people over its whole horizon, so the pages offer the
    waitlist."""
    return set_up_demo_appointments(live.service, office_id=pages_settings.default_office_id)


@pytest.fixture
def tick_at(pages_settings: Settings, live: ServedApp) -> TickAt:
    """Runs the appointments' time-driven tick as ``akte appointments tick --now WHEN``
    does: a second service over the live server's store whose clock shows ``WHEN`` (and
    runs on from there), its mails into the same development mailbox. No code is
    patched; the live server keeps the real clock."""

    def tick(when: datetime) -> TickReport:
        with open_service(pages_settings, clock=clock_from(when)) as shifted:
            return shifted.appointments.run_appointment_tick()

    return tick


@pytest.fixture(scope="session")
def worklists(live: ServedApp) -> Iterator[ProjectionRunner]:
    """The live server's read models kept up to date, as ``akte serve`` keeps them: a
    projection runner following the log (the ``live`` app itself runs none, so that
    tests that need no worklist pay nothing for it). A test waits for it with
    ``wait_until(position, timeout)``."""
    read_models: ReadModels = live.app.state.read_models
    runner = ProjectionRunner(
        ApplicationEventLog(live.service), read_models.views, read_models.projections
    )
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()


@pytest.fixture(scope="session")
def caseworker(pages_settings: Settings, live: ServedApp) -> dict[str, str]:
    """The headers of a caseworker of the default office, with a token of the local
    issuer whose key the live server checks tokens with (``akte token sb-01``)."""
    issuer = LocalIssuer.load_or_create(pages_settings.local_issuer_key_file)
    token = issuer.issue(
        user_id="sb-01", roles=(Role.CASEWORKER,), office_id=pages_settings.default_office_id
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def mail_in_mailbox(pages_settings: Settings, live: ServedApp) -> int:
    """A mail in the development mailbox with a link to the start page; its number."""
    mailbox = MailboxMailer(pages_settings.mailbox_directory, sender=pages_settings.smtp_sender)
    mailbox.send(
        OutgoingMail(
            to="ayse.yilmaz@example.org",
            subject=MAIL_SUBJECT,
            body=(
                "Guten Tag,\n\nbitte bestätigen Sie Ihren Termin:\n"
                f"{live.base_url}/?from=mail\n\nIhre Ausländerbehörde"
            ),
            message_id="<mailbox-page-test@akte>",
        )
    )
    (stored,) = [mail for mail in mailbox.mails() if mail.subject == MAIL_SUBJECT]
    return stored.number


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    executable = chromium_path()
    arguments = ["--disable-dev-shm-usage", "--disable-gpu"]
    if os.geteuid() == 0:
        # Chromium's sandbox cannot start as root (containers, CI).
        arguments.append("--no-sandbox")
    launched = playwright_driver.chromium.launch(
        executable_path=executable, headless=True, args=arguments
    )
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def guard(live: ServedApp) -> Guard:
    return Guard(allowed={origin_of(live.base_url)})


@pytest.fixture
def open_page(browser: Browser, live: ServedApp, guard: Guard) -> Iterator[PageOpener]:
    """Opens fresh guarded pages (each in its own context: no cookies) of a window size
    and device scale; German is the browser's language. The test fails at teardown if the
    guard saw anything."""
    contexts: list[BrowserContext] = []

    def opener(
        *, width: int = DESKTOP_WIDTH, height: int = DESKTOP_HEIGHT, scale: float = 1
    ) -> Page:
        context = browser.new_context(
            base_url=live.base_url,
            viewport={"width": width, "height": height},
            device_scale_factor=scale,
            locale="de-DE",
            extra_http_headers={"Accept-Language": "de-DE,de;q=0.9"},
        )
        context.set_default_timeout(15_000)
        guard.watch(context)
        contexts.append(context)
        return context.new_page()

    try:
        yield opener
    finally:
        for context in contexts:
            context.close()
    verdict = guard.verdict()
    if verdict:
        pytest.fail(verdict)


@pytest.fixture
def page(open_page: PageOpener) -> Page:
    """A fresh guarded page at desktop size."""
    return open_page()
