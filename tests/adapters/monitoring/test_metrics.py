"""``/metrics`` counts what Akte's channels did, on SQLite and PostgreSQL.

Mails go to a real SMTP server (aiosmtpd on 127.0.0.1) that refuses one address; payment
notifications arrive signed, repeated and forged at the real route; an erasure is
recorded. Each figure is read from a scrape of ``/metrics`` once the read models have
caught up, so a handler, a label or a query that counted wrong would fail here.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Final
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from adapters.bootstrap import build_app
from adapters.mail.smtp import SmtpMailer
from adapters.payment.setup import PaymentSetup
from adapters.settings import Settings
from adapters.views.read_models import ReadModels
from service import AkteService
from tests.adapters.mail.test_smtp import Inbox, smtp
from tests.conftest import FakeClock
from tests.http.routes.test_declarations import SECRET, Api, notification
from tests.service.test_appointments import NEXT_MONDAY
from tests.service.test_case_files import open_case
from tests.support.appointments import OFFICE, POINT, STUDENT, local, person, proof, set_up
from tests.support.declarations import RecordingProvider

__all__ = ["smtp"]  # the fixture, imported for these tests

CATCH_UP_SECONDS: Final = 30.0

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient) -> Samples:
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def caught_up(service: AkteService, read_models: ReadModels) -> None:
    head = service.recorder.max_notification_id() or 0
    assert read_models.wait_until(head, CATCH_UP_SECONDS)


@pytest.fixture
def app_client(
    service: AkteService, settings: Settings, read_models: ReadModels
) -> Iterator[TestClient]:
    app = build_app(
        settings,
        service,
        read_models=read_models,
        payments=PaymentSetup(
            provider=RecordingProvider(), shared_secret=SECRET, public_base_url=None
        ),
    )
    with TestClient(app) as client:
        yield client


# -------------------------------------------------------------------------- mails


def _book(service: AkteService, n: int, address: str) -> UUID:
    recorded = service.appointments.book_appointment(
        office_id=OFFICE,
        service_point_code=POINT,
        appointment_type="extend-title",
        starts_at=local(NEXT_MONDAY, 8 + n),
        situation=STUDENT,
        person=person(n, email=address),
        proof=proof(service),
        by="public",
    )
    return recorded.appointment_id


def test_mails_sent_failed_and_bounced_are_counted_from_the_log(
    service: AkteService,
    smtp: tuple[Inbox, int],
    read_models: ReadModels,
    app_client: TestClient,
) -> None:
    inbox, port = smtp
    set_up(
        service, SmtpMailer(host="127.0.0.1", port=port, sender="t@x.example", timeout_seconds=5)
    )
    caught_up(service, read_models)
    before = scrape(app_client)
    inbox.refused.add("refused@example.org")

    _book(service, 1, "refused@example.org")  # MailFailed (550)
    sent = _book(service, 2, "ayse@example.org")  # MailSent
    _book(service, 3, "ben@example.org")  # MailSent
    service.appointments.record_mail_bounce(sent, mail_number=1, reason="5.1.1")
    caught_up(service, read_models)
    after = scrape(app_client)

    assert len(inbox.messages) == 2
    assert [
        value(before, "akte_mails_total", outcome=o) for o in ("sent", "failed", "bounced")
    ] == [
        0,
        0,
        0,
    ]
    assert [value(after, "akte_mails_total", outcome=o) for o in ("sent", "failed", "bounced")] == [
        2,
        1,
        1,
    ]


def test_a_mail_server_that_cannot_be_reached_counts_as_failed_until_a_retry_sends_it(
    service: AkteService,
    smtp: tuple[Inbox, int],
    read_models: ReadModels,
    app_client: TestClient,
    clock: FakeClock,
) -> None:
    _inbox, port = smtp
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    set_up(service, SmtpMailer(host="127.0.0.1", port=closed, sender="t@x", timeout_seconds=2))
    _book(service, 1, "ayse@example.org")
    caught_up(service, read_models)
    down = scrape(app_client)

    set_up(service, SmtpMailer(host="127.0.0.1", port=port, sender="t@x", timeout_seconds=5))
    clock.advance(minutes=5)
    assert service.appointments.run_appointment_tick().mails_sent == 1
    caught_up(service, read_models)
    back = scrape(app_client)

    assert (
        value(down, "akte_mails_total", outcome="failed"),
        value(down, "akte_mails_total", outcome="sent"),
    ) == (1, 0)
    assert (
        value(back, "akte_mails_total", outcome="failed"),
        value(back, "akte_mails_total", outcome="sent"),
    ) == (1, 1)


# ----------------------------------------------------------- payment notifications


def test_payment_notifications_are_counted_by_outcome_and_refusals_by_reason(
    service: AkteService,
    read_models: ReadModels,
    app_client: TestClient,
    clock: FakeClock,
) -> None:
    api = Api(app_client, service, RecordingProvider(), clock)
    paid, failed, expired, forged = (api.pending_transaction(api.submit()) for _ in range(4))

    answers = [
        api.notify(notification(paid)),
        api.notify(notification(paid)),  # repeated: already on record
        api.notify(notification(failed, "failed")),
        api.notify(notification(expired, "expired")),
        api.notify(notification(forged), key=None),
        api.notify(notification(forged), key=b"a forger's guess at the shared key"),
        api.notify(notification(forged), key=b"another guess at the shared key!"),
        api.notify(notification("TX-NOBODY-KNOWS")),
        api.notify(notification(forged, amount_cents=1)),
        api.notify(b"{not json"),
    ]
    caught_up(service, read_models)
    samples = scrape(app_client)

    assert [answer.status_code for answer in answers] == [200] * 4 + [401] * 3 + [404, 422, 422]
    recorded = {
        outcome: value(samples, "akte_payment_notifications_recorded_total", outcome=outcome)
        for outcome in ("paid", "surplus", "failed", "expired")
    }
    assert recorded == {"paid": 1, "surplus": 0, "failed": 1, "expired": 1}
    refused = {
        reason: value(samples, "akte_payment_notifications_refused_total", reason=reason)
        for reason in ("unsigned", "bad_signature", "malformed", "unknown_transaction", "mismatch")
    }
    assert refused == {
        "unsigned": 1,
        "bad_signature": 2,
        "malformed": 1,
        "unknown_transaction": 1,
        "mismatch": 1,
    }
    assert value(samples, "akte_payment_notifications_repeated_total") == 1
    assert forged not in app_client.get("/metrics").text


# ------------------------------------------------------------------------ erasures


def test_erasures_are_counted_by_legal_ground(
    service: AkteService, read_models: ReadModels, app_client: TestClient, clock: FakeClock
) -> None:
    grounds = ["dsgvo-17", "aufenthg-91", "dsgvo-17"]
    for ground in grounds:
        case_id, version = open_case(service)
        clock.advance(days=1)
        service.data_protection.erase_personal_data(
            case_id,
            expected_version=version,
            by="dsb-01",
            legal_ground=ground,
            approved_by="dsb-01",
        )
    open_case(service)  # not erased
    caught_up(service, read_models)
    samples = scrape(app_client)

    counted = {
        ground: value(samples, "akte_erasures_total", legal_ground=ground)
        for ground in ("aufenthg-91", "aufenthv-68", "dsgvo-17")
    }
    assert counted == {"aufenthg-91": 1, "aufenthv-68": 0, "dsgvo-17": 2}


def test_the_counts_hold_no_personal_data_and_survive_a_new_server(
    service: AkteService,
    settings: Settings,
    read_models: ReadModels,
    app_client: TestClient,
    clock: FakeClock,
) -> None:
    case_id, version = open_case(service)
    service.data_protection.erase_personal_data(
        case_id, expected_version=version, by="dsb-01", legal_ground="dsgvo-17", approved_by="x"
    )
    caught_up(service, read_models)

    # A second server process over the same stores, started afterwards, says the same.
    second_app = build_app(settings, service)
    try:
        with TestClient(second_app) as second:
            again = scrape(second)
    finally:
        second_app.state.read_models.close()
    text = app_client.get("/metrics").text

    assert value(again, "akte_erasures_total", legal_ground="dsgvo-17") == 1
    assert str(case_id) not in text
    assert "Beispiel" not in text
    assert "dsb-01" not in text
