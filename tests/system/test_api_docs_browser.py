"""``/docs`` in a real headless Chromium that can reach no host but 127.0.0.1.

Swagger UI is a script: the page is empty until it has loaded its files and the OpenAPI
document and drawn the operations. Every other host name resolves to nothing, so the
operations appear only if Akte served all of it itself (FastAPI's own page, from a CDN,
stays blank here). The DOM as Chromium built it is kept at ``test-output/api-docs.html``.
Without Chromium the test is skipped, saying so; under ``CI=true`` that is a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.bootstrap import build_app, build_service
from adapters.settings import Settings
from tests.support.browser import chromium_path as chromium
from tests.support.live_server import ServedApp
from tests.system.test_report_browser import OUTPUT, run_chromium

# Every name resolves to nothing but 127.0.0.1 itself: a CDN would not answer.
ONLY_LOCALHOST = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"
# Virtual time: Chromium waits for the scripts and the fetch of the document, not a clock.
RENDER_BUDGET_MS = 20_000


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedApp]:
    settings = Settings(store="sqlite", data_dir=tmp_path / "data")
    service = build_service(settings)
    app = ServedApp(build_app(settings, service), service)
    app.start()
    try:
        yield app
    finally:
        app.stop()
        service.close()


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_the_docs_page_shows_the_operations_without_any_other_host(
    served: ServedApp, tmp_path: Path
) -> None:
    binary = chromium()

    result = run_chromium(
        binary,
        tmp_path / "profile",
        ONLY_LOCALHOST,
        f"--virtual-time-budget={RENDER_BUDGET_MS}",
        # Swagger UI draws a tag's operations once they scroll into view: a window as
        # tall as the whole page has them all, however long the API's description grows.
        "--window-size=1280,40000",
        "--dump-dom",
        f"{served.base_url}/docs",
    )

    dom = result.stdout.decode()
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "api-docs.html").write_text(dom, encoding="utf-8")
    assert 'class="swagger-ui' in dom, dom[:2000]
    assert "Failed to load API definition" not in dom
    # Operations, by path and by their operation ids, and a tag with its description.
    assert "opblock" in dom
    assert "/appointments/bookings" in dom
    assert "book_appointment" in dom
    assert "open_case" in dom
    assert "Online booking by the person" in dom
