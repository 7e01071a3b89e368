"""Attachments of online applications sent by reference (adapters/inbox/attachments.py,
adapters/inbox/messages.py), against a real HTTP server on 127.0.0.1 standing in for
the state's portal: a reference below the portal's address whose size and SHA-256 match
becomes a document; one that does not match, cannot be fetched (missing, too slow, a
redirect), is too large or points elsewhere returns the application to its sender and
records nothing."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from adapters.inbox.attachments import AttachmentFetcher, AttachmentUnavailable
from adapters.inbox.consumer import InboxConfig, InboxConsumer
from adapters.inbox.messages import Handled, handle_message
from adapters.inbox.schemas import problems
from adapters.simulation.legacy_scans import make_pdf
from domain.case_file import MasterData
from service import AkteService
from tests.support.inbox import OFFICE, application, encoded
from tests.support.outbox import free_port

PERSON = MasterData("Haddad", "Omar", date(1985, 1, 2), "SYR", "N87654321", "Weg 2")
NOW = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
PDF = make_pdf(2)
SLOW_SECONDS = 6.0
TIMEOUT = 0.5


@dataclass
class Portal:
    """What the portal serves, and the paths it was asked for."""

    base_url: str
    files: dict[str, bytes] = field(default_factory=dict)
    requested: list[str] = field(default_factory=list)


def _handler(portal: Portal) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the standard library's name
            portal.requested.append(self.path)
            if self.path.endswith("/umgeleitet.pdf"):
                self.send_response(302)
                self.send_header("Location", "/anlagen/antrag.pdf")
                self.end_headers()
                return
            if self.path.endswith("/kopf-langsam.pdf"):
                # The headers trickle, each line well within the per-read timeout, then
                # the body at once: only a deadline on the whole fetch refuses it.
                self.send_response(200)
                self.send_header("Content-Length", str(len(PDF)))
                for number in range(int(SLOW_SECONDS / 0.2)):
                    self.send_header(f"X-Langsam-{number}", "1")
                    self.flush_headers()
                    time.sleep(0.2)
                self.end_headers()
                self.wfile.write(PDF)
                return
            if self.path.endswith("/langsam.pdf"):
                # Headers at once, then the body trickles: the whole transfer is bounded.
                self.send_response(200)
                self.send_header("Content-Length", str(len(PDF)))
                self.end_headers()
                for start in range(0, len(PDF), 100):
                    self.wfile.write(PDF[start : start + 100])
                    self.wfile.flush()
                    time.sleep(SLOW_SECONDS / max(1, len(PDF) // 100))
                return
            body = portal.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            if not self.path.endswith("/ohne-laenge.pdf"):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads ``requested``."""

    return Handler


@pytest.fixture
def portal() -> Iterator[Portal]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Portal("")))
    port = server.server_address[1]
    portal = Portal(f"http://127.0.0.1:{port}/anlagen/")
    server.RequestHandlerClass = _handler(portal)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield portal
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def by_reference(uri: str, data: bytes = PDF, *, size: int | None = None) -> dict[str, Any]:
    message = application(PERSON, reply_to="portal.antworten", attachment=b"")
    message["anlagen"] = [
        {
            "dateiname": "antrag.pdf",
            "referenz": {
                "uri": uri,
                "sha256": hashlib.sha256(data).hexdigest(),
                "groesse": len(data) if size is None else size,
            },
        }
    ]
    return message


def handle(service: AkteService, message: dict[str, Any], portal: Portal | None) -> Handled:
    fetcher = None if portal is None else AttachmentFetcher(portal.base_url, timeout=TIMEOUT)
    return handle_message(
        encoded(message), notices=service.notices, office_id=OFFICE, now=NOW, fetcher=fetcher
    )


def head(service: AkteService) -> int:
    return service.recorder.max_notification_id() or 0


def hints(handled: Handled) -> str:
    assert handled.answer is not None
    text: str = handled.answer.body["rueckweisung"]["ergaenzendeHinweise"]
    return text


def test_a_referenced_attachment_is_fetched_checked_and_attached(
    service: AkteService, portal: Portal
) -> None:
    case_id = service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01").case_id
    portal.files["/anlagen/antrag.pdf"] = PDF
    message = by_reference(portal.base_url + "antrag.pdf")
    assert problems(message, "Portal.Aufenthaltsantrag") == []

    handled = handle(service, message, portal)

    assert handled.returned is None
    assert handled.outcome is not None
    assert handled.outcome.outcome == "procedure"
    [document] = service.get_case(case_id).documents
    assert (document.sha256, document.size_bytes) == (hashlib.sha256(PDF).hexdigest(), len(PDF))
    assert document.page_count == 2
    assert service.intake.documents.read_bytes(document.sha256, owner=case_id) == PDF
    assert portal.requested == ["/anlagen/antrag.pdf"]


def test_a_redelivery_is_a_duplicate_even_when_the_portal_no_longer_has_the_file(
    service: AkteService, portal: Portal
) -> None:
    """The claim is looked up before any fetch: the second delivery fetches nothing and
    is answered as already received, not returned for a missing attachment."""
    portal.files["/anlagen/antrag.pdf"] = PDF
    message = by_reference(portal.base_url + "antrag.pdf")
    first = handle(service, message, portal)
    assert first.outcome is not None
    del portal.files["/anlagen/antrag.pdf"]
    before = head(service)

    again = handle(service, message, portal)

    assert again.returned is None
    assert again.outcome is not None
    assert again.outcome.duplicate
    assert again.answer is not None
    assert again.answer.body["bereitsEingegangen"] is True
    assert portal.requested == ["/anlagen/antrag.pdf"]
    assert head(service) == before


def test_a_body_without_a_length_is_read_to_its_declared_size(
    service: AkteService, portal: Portal
) -> None:
    portal.files["/anlagen/ohne-laenge.pdf"] = PDF
    handled = handle(service, by_reference(portal.base_url + "ohne-laenge.pdf"), portal)
    assert handled.returned is None, hints(handled)


@pytest.mark.parametrize(
    ("name", "served", "declared", "reason"),
    [
        ("anders.pdf", PDF[:-8] + b"00000000", PDF, "SHA-256"),  # same size
        ("fehlt.pdf", None, PDF, "HTTP 404"),
        ("umgeleitet.pdf", None, PDF, "redirect"),
        ("laenger.pdf", PDF + b"mehr", PDF, "size"),
        ("ohne-laenge.pdf", PDF + b"mehr", PDF, "size"),
        ("langsam.pdf", None, PDF, "timed out"),
        ("kopf-langsam.pdf", None, PDF, "timed out"),
    ],
)
def test_a_reference_that_does_not_match_or_cannot_be_fetched_goes_back(
    service: AkteService,
    portal: Portal,
    name: str,
    served: bytes | None,
    declared: bytes,
    reason: str,
) -> None:
    if served is not None:
        portal.files[f"/anlagen/{name}"] = served
    before = head(service)

    handled = handle(service, by_reference(portal.base_url + name, declared), portal)

    assert handled.returned == "regel-verletzt"
    assert handled.answer is not None
    assert handled.answer.subject == "portal.antworten"
    assert "anlagen/0/referenz" in hints(handled)
    assert reason in hints(handled)
    assert name not in hints(handled), "the reason names the rule, not the address"
    assert head(service) == before
    assert portal.requested == [f"/anlagen/{name}"]


@pytest.mark.parametrize(
    "where",
    [
        "http://127.0.0.1:{other}/anlagen/antrag.pdf",  # another port: another server
        "http://localhost:{port}/anlagen/antrag.pdf",  # another host name
        "https://127.0.0.1:{port}/anlagen/antrag.pdf",  # another scheme
        "http://127.0.0.1:{port}/intern/antrag.pdf",  # outside the attachments' path
        "http://127.0.0.1:{port}/anlagen/../intern/antrag.pdf",
        "http://127.0.0.1:{port}/anlagen/%2e%2e/intern/antrag.pdf",
        "http://nutzer:geheim@127.0.0.1:{port}/anlagen/antrag.pdf",
    ],
)
def test_a_reference_outside_the_portal_is_never_fetched(
    service: AkteService, portal: Portal, where: str
) -> None:
    portal.files["/anlagen/antrag.pdf"] = PDF
    port = portal.base_url.split(":")[2].split("/")[0]
    uri = where.format(port=port, other=free_port())
    before = head(service)

    handled = handle(service, by_reference(uri), portal)

    assert handled.returned == "regel-verletzt"
    assert "not an address of the portal" in hints(handled)
    assert portal.requested == []
    assert head(service) == before


def test_a_declared_size_above_the_limit_is_refused_before_fetching(portal: Portal) -> None:
    portal.files["/anlagen/antrag.pdf"] = PDF
    fetcher = AttachmentFetcher(portal.base_url, max_bytes=len(PDF) - 1)
    with pytest.raises(AttachmentUnavailable, match="larger than"):
        fetcher.fetch(
            portal.base_url + "antrag.pdf", sha256=hashlib.sha256(PDF).hexdigest(), size=len(PDF)
        )
    assert portal.requested == []


def test_without_a_portal_address_references_go_back(service: AkteService) -> None:
    before = head(service)
    handled = handle(service, by_reference("http://127.0.0.1:9/anlagen/antrag.pdf"), None)
    assert handled.returned == "regel-verletzt"
    assert "inline only" in hints(handled)
    assert head(service) == before


def test_the_schema_takes_content_or_a_reference_not_both_nor_half_a_reference() -> None:
    message = by_reference("http://127.0.0.1:9/anlagen/antrag.pdf")
    assert problems(message, "Portal.Aufenthaltsantrag") == []
    both = by_reference("http://127.0.0.1:9/anlagen/antrag.pdf")
    both["anlagen"][0]["inhalt"] = "JVBERg=="
    assert problems(both, "Portal.Aufenthaltsantrag") == ["/anlagen/0: oneOf"]
    half = by_reference("http://127.0.0.1:9/anlagen/antrag.pdf")
    del half["anlagen"][0]["referenz"]["sha256"]
    assert problems(half, "Portal.Aufenthaltsantrag") == ["/anlagen/0/referenz: required"]
    not_a_hash = by_reference("http://127.0.0.1:9/anlagen/antrag.pdf")
    not_a_hash["anlagen"][0]["referenz"]["sha256"] = "x" * 64
    assert problems(not_a_hash, "Portal.Aufenthaltsantrag") == [
        "/anlagen/0/referenz/sha256: pattern"
    ]


def test_one_message_s_attachments_share_a_byte_budget(
    service: AkteService, portal: Portal
) -> None:
    """Each attachment is below the limit for one; together they are above the
    message's: the second is refused before it is fetched."""
    portal.files["/anlagen/eins.pdf"] = PDF
    portal.files["/anlagen/zwei.pdf"] = PDF
    message = by_reference(portal.base_url + "eins.pdf")
    second = by_reference(portal.base_url + "zwei.pdf")["anlagen"][0]
    message["anlagen"].append({**second, "dateiname": "zwei.pdf"})
    fetcher = AttachmentFetcher(portal.base_url, timeout=TIMEOUT, message_bytes=len(PDF) + 1)
    before = head(service)

    handled = handle_message(
        encoded(message),
        notices=service.notices,
        office_id=OFFICE,
        now=NOW,
        fetcher=fetcher.for_message(),
    )

    assert handled.returned == "regel-verletzt"
    assert "anlagen/1/referenz" in hints(handled)
    assert "message's attachments are larger" in hints(handled)
    assert portal.requested == ["/anlagen/eins.pdf"]
    assert head(service) == before


def test_one_message_s_attachments_share_a_time_budget(portal: Portal) -> None:
    """Per attachment the time would do; the message's budget is what ends the fetch."""
    fetcher = AttachmentFetcher(portal.base_url, timeout=SLOW_SECONDS * 2, message_timeout=TIMEOUT)
    with pytest.raises(AttachmentUnavailable, match="timed out"):
        fetcher.for_message().fetch(
            portal.base_url + "kopf-langsam.pdf",
            sha256=hashlib.sha256(PDF).hexdigest(),
            size=len(PDF),
        )
    assert portal.requested == ["/anlagen/kopf-langsam.pdf"]


def test_the_time_per_message_must_end_before_the_broker_delivers_again(
    service: AkteService,
) -> None:
    """A message whose attachments may take longer than ``ack_wait`` would be delivered
    a second time while the first delivery still fetches: the inbox refuses to start."""
    config = InboxConfig(office=OFFICE, ack_wait=30.0)
    too_slow = AttachmentFetcher("http://127.0.0.1:9/anlagen/", message_timeout=30.0)
    with pytest.raises(ValueError, match="ack_wait"):
        InboxConsumer(service.notices, config, fetcher=too_slow)
    fast_enough = AttachmentFetcher("http://127.0.0.1:9/anlagen/", message_timeout=20.0)
    InboxConsumer(service.notices, config, fetcher=fast_enough)
