"""``akte serve --demo`` runs the stand-in ePayment platform and the development
mailbox beside the demo, and names the pages to open."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapters.bootstrap import demo_payments
from adapters.cli.main import main
from adapters.reference.staff_plan import EXAMPLE_STAFF_FILE
from adapters.settings import Settings
from tests.support.demo_site import running_demo


def test_serve_demo_starts_the_stand_in_and_lists_the_pages(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_DATA_DIR", str(environment / "data"))
    seen: dict[str, Any] = {}

    def run(app: FastAPI, **options: Any) -> None:
        settings: Settings = app.state.settings
        seen["stand_in"] = settings.payment_provider_url
        seen["public_base_url"] = settings.public_base_url
        seen["staff_file"] = settings.staff_file
        seen["confirmation_link"] = (
            app.state.service.appointments.appointment_setup.confirmation_link
        )
        # The stand-in answers while the server runs: an unknown payment is its 404.
        seen["answer"] = httpx.get(settings.payment_provider_url + "/pay/unknown").status_code
        with TestClient(app) as client:
            seen["mailbox"] = client.get("/dev/mailbox").status_code

    monkeypatch.setattr(uvicorn, "run", run)

    assert main(["serve", "--demo", "--cases", "2", "--port", "8123"]) == 0

    out, _err = capsys.readouterr()
    stand_in = seen["stand_in"]
    assert stand_in.startswith("http://127.0.0.1:")
    assert stand_in != "http://127.0.0.1:8010"
    assert seen["answer"] == 404
    assert seen["mailbox"] == 200
    # The mails' links lead to the port the demo serves on, not to a default one.
    assert seen["public_base_url"] == "http://127.0.0.1:8123"
    # The demo office's report and workload show staff from the example plan.
    assert seen["staff_file"] == EXAMPLE_STAFF_FILE
    assert seen["confirmation_link"].startswith("http://127.0.0.1:8123/booking/confirm/")
    for path in ("/", "/booking", "/contact", "/declaration", "/dev/mailbox"):
        assert f"http://127.0.0.1:8123{path}\n" in out
    assert f"{stand_in} (pay declarations here)" in out
    # It stops with the server.
    with pytest.raises(httpx.TransportError):
        httpx.get(stand_in + "/pay/unknown", timeout=2)


def test_no_stand_in_in_production_or_with_a_configured_platform(tmp_path: Path) -> None:
    production = Settings(data_dir=tmp_path, deployment="production")
    with demo_payments(production) as (settings, stand_in):
        assert (settings, stand_in) == (production, None)
    configured = Settings(data_dir=tmp_path, payment_provider_url="https://pay.example")
    with demo_payments(configured) as (settings, stand_in):
        assert (settings, stand_in) == (configured, None)


def test_the_running_demo_serves_pages_mailbox_and_stand_in(tmp_path: Path) -> None:
    with running_demo(tmp_path, cases=2) as demo:
        http = demo.served.http
        assert http.get("/").status_code == 200
        assert http.get("/dev/mailbox").status_code == 200
        assert demo.mailbox.mails() == []
        assert demo.summary.appointments is not None
        assert httpx.get(demo.stand_in_url + "/pay/unknown").status_code == 404
        assert demo.settings.payment_provider_url == demo.stand_in_url
