"""The demo as ``akte serve --demo`` runs it, in-process, for browser and HTTP tests:
a SQLite store with a small demo office, the stand-in ePayment platform, the development
mailbox, and the app under uvicorn on a free port of 127.0.0.1.

    with running_demo(tmp_path, cases=5) as demo:
        page.goto(demo.base_url + "/booking")
        ...
        mail = demo.mailbox.latest_to("person@example.org")

``demo.stand_in.ledger`` holds the payments made at the stand-in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from adapters.bootstrap import demo_payments, open_service, served_app
from adapters.mail.mailbox import Mailbox
from adapters.payment.stand_in import StandInLedger
from adapters.settings import Settings
from adapters.simulation.demo_office import DemoSummary, load_demo_office
from service_common import system_clock
from tests.support.live_server import ServedApp


@dataclass(frozen=True)
class DemoSite:
    base_url: str
    """Where the demo's pages and API answer."""
    served: ServedApp
    """The app, its service and an HTTP client on ``base_url``."""
    settings: Settings
    """As the server runs with them (``payment_provider_url``: the stand-in)."""
    summary: DemoSummary
    mailbox: Mailbox
    """The mails Akte sent (development mailbox), newest first."""
    stand_in_url: str
    stand_in_ledger: StandInLedger


@contextmanager
def running_demo(
    directory: Path,
    *,
    cases: int = 5,
    seed: int = 2024,
    clock: Callable[[], datetime] = system_clock,
    **settings_overrides: object,
) -> Iterator[DemoSite]:
    """The demo served until the block ends; ``directory`` holds its data."""
    base = Settings(store="sqlite", data_dir=directory / "data", **settings_overrides)  # type: ignore[arg-type]
    with (
        open_service(base, clock=clock) as service,
        demo_payments(base) as (settings, stand_in),
        served_app(settings, service) as app,
    ):
        assert stand_in is not None, "the stand-in did not start (production settings?)"
        summary = load_demo_office(service, cases=cases, seed=seed)
        served = ServedApp(app, service)
        served.start()
        try:
            yield DemoSite(
                base_url=served.base_url,
                served=served,
                settings=settings,
                summary=summary,
                mailbox=Mailbox(settings.mailbox_directory),
                stand_in_url=stand_in.base_url,
                stand_in_ledger=stand_in.ledger,
            )
        finally:
            served.stop()
