"""Commitment declarations and their payment over HTTP, on SQLite and PostgreSQL.

The end-to-end test runs Akte under uvicorn on 127.0.0.1 and the stand-in payment
platform as a second real HTTP server: the applicant submits and pays, the platform
notifies Akte with a signed body, a caseworker processes the declaration. The other
tests use FastAPI's test client; the notification endpoint gets genuine, repeated,
reordered and forged notifications, also as hypothesis draws them.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import SecretStr

from adapters.bootstrap import build_app, payments_for
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.payment.setup import DEVELOPMENT_SHARED_SECRET, PaymentSetup, PaymentsSwitchedOff
from adapters.payment.signatures import SIGNATURE_HEADER, signature_for, signature_is_valid
from adapters.payment.stand_in import StandInServer
from adapters.settings import Settings
from service import AkteService
from tests.conftest import FakeClock
from tests.support.declarations import PERSONAL_VALUES, RecordingProvider, submission_json
from tests.support.live_server import ServedApp

PROBLEMS: Final = "https://akte.example/problems/"
SECRET: Final = DEVELOPMENT_SHARED_SECRET.encode()
NOTIFICATIONS: Final = "/payments/notifications"
OFFICE: Final = "abh-musterstadt"
INVALID: Final = "invalid-signature"


@pytest.fixture(scope="module")
def issuer_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("local-issuer") / "local-issuer.pem"
    LocalIssuer.load_or_create(path)
    return path


@pytest.fixture(scope="module")
def issuer(issuer_key_file: Path) -> LocalIssuer:
    return LocalIssuer.load_or_create(issuer_key_file)


def bearer(
    issuer: LocalIssuer,
    user: str = "sb-01",
    role: Role = Role.CASEWORKER,
    office: str = OFFICE,
) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.issue(user_id=user, roles=[role], office_id=office)}"}


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandInServer]:
    with StandInServer(SECRET) as server:
        yield server


def app_settings(settings: Settings, issuer_key_file: Path, **changes: Any) -> Settings:
    return settings.model_copy(update={"local_issuer_key_path": issuer_key_file} | changes)


@dataclass
class Api:
    """The app through FastAPI's test client, with the provider it creates payments at."""

    client: TestClient
    service: AkteService
    provider: RecordingProvider
    clock: FakeClock

    def events(self) -> int:
        return self.service.recorder.max_notification_id() or 0

    def submit(self, **changes: Any) -> str:
        response = self.client.post(
            "/commitment-declarations", json=submission_json(self.clock.now.date(), **changes)
        )
        assert response.status_code == 201, response.text
        reference: str = response.json()["reference"]
        return reference

    def pay_start(self, reference: str, method: str = "visa") -> httpx.Response:
        response: httpx.Response = self.client.post(
            "/commitment-declarations/own/payment",
            json={"method": method},
            headers={"X-Declaration-Reference": reference},
        )
        return response

    def pending_transaction(self, reference: str) -> str:
        response = self.pay_start(reference)
        assert response.status_code == 201, response.text
        return str(response.json()["redirect_url"]).rsplit("/", 1)[1]

    def notify(
        self, body: dict[str, Any] | bytes, *, key: bytes | None = SECRET, signature: str = ""
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if signature:
            headers[SIGNATURE_HEADER] = signature
        elif key is not None:
            headers[SIGNATURE_HEADER] = signature_for(key, raw)
        response: httpx.Response = self.client.post(NOTIFICATIONS, content=raw, headers=headers)
        return response

    def own(self, reference: str) -> httpx.Response:
        response: httpx.Response = self.client.get(
            "/commitment-declarations/own", headers={"X-Declaration-Reference": reference}
        )
        return response


def notification(transaction_id: str, status: str = "paid", **changes: Any) -> dict[str, Any]:
    return {
        "transaction_id": transaction_id,
        "status": status,
        "amount_cents": 2900,
        "currency": "EUR",
        "method": "giropay",
    } | changes


def build_api(
    service: AkteService, settings: Settings, clock: FakeClock, issuer_key_file: Path
) -> Generator[Api, None, None]:
    provider = RecordingProvider()
    app = build_app(
        app_settings(settings, issuer_key_file),
        service,
        payments=PaymentSetup(provider=provider, shared_secret=SECRET, public_base_url=None),
    )
    with TestClient(app) as client:
        yield Api(client, service, provider, clock)


@pytest.fixture
def api(
    service: AkteService, settings: Settings, clock: FakeClock, issuer_key_file: Path
) -> Iterator[Api]:
    yield from build_api(service, settings, clock, issuer_key_file)


# ------------------------------------------------------------ the whole story


def test_a_declaration_from_submission_to_handover_over_real_http(
    service: AkteService,
    settings: Settings,
    clock: FakeClock,
    issuer: LocalIssuer,
    issuer_key_file: Path,
    stand_in: StandInServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    served = ServedApp(
        build_app(
            app_settings(settings, issuer_key_file, payment_provider_url=stand_in.base_url),
            service,
        ),
        service,
    )
    served.start()
    browser = httpx.Client(trust_env=False, timeout=10)
    try:
        # The applicant, without an account, submits and gets the secret reference.
        submitted = served.http.post(
            "/commitment-declarations", json=submission_json(clock.now.date())
        )
        assert submitted.status_code == 201, submitted.text
        assert submitted.headers["Cache-Control"] == "no-store"
        reference = submitted.json()["reference"]
        assert submitted.json()["fee"] == {"amount_cents": 2900, "currency": "EUR", "status": "due"}
        own = {"X-Declaration-Reference": reference}

        # ... starts paying and is sent to the platform's page ...
        started = served.http.post(
            "/commitment-declarations/own/payment", json={"method": "visa"}, headers=own
        )
        assert started.status_code == 201, started.text
        redirect_url = started.json()["redirect_url"]
        assert redirect_url.startswith(f"{stand_in.base_url}/pay/SI-")
        page = browser.get(redirect_url)
        assert page.status_code == 200
        assert "29,00 EUR" in page.text

        # ... pays there, and the platform notifies Akte (signed), once and once again.
        paid = browser.post(redirect_url, json={"outcome": "paid", "method": "mastercard"})
        assert paid.json()["notification_status"] == 200, paid.text
        again = browser.post(f"{redirect_url}/redeliver")
        assert again.json()["notification_status"] == 200
        status = served.http.get("/commitment-declarations/own", headers=own).json()
        assert (status["status"], status["fee"]["status"]) == ("awaiting_ability_check", "paid")

        # A caseworker of the office finds it, checks, invites and hands it over.
        caseworker = bearer(issuer)
        [listed] = served.http.get("/commitment-declarations", headers=caseworker).json()
        url = f"/commitment-declarations/{listed['id']}"
        read = served.http.get(url, headers=caseworker)
        assert (read.status_code, read.headers["ETag"]) == (200, '"4"')
        assert read.json()["guarantor"]["surname"] == "Beispiel"
        etag = read.headers["ETag"]
        for path, body in (
            ("/ability-check", {"passed": True}),
            (
                "/pickup-appointment",
                {"appointment_at": (clock.now + timedelta(days=2)).isoformat()},
            ),
            ("/handover", {}),
        ):
            written = served.http.post(
                url + path, json=body, headers=caseworker | {"If-Match": etag}
            )
            assert written.status_code == 200, written.text
            etag = written.headers["ETag"]
        assert etag == '"7"'

        # The events tell the whole story: what, who, when (business and recorded).
        events = served.http.get(url + "/events", headers=caseworker).json()
        assert [(event["type"], event["by"]) for event in events] == [
            ("Submitted", "public"),
            ("FeeAssessed", "public"),
            ("PaymentInitiated", "public"),
            ("FeePaid", "payment-provider"),
            ("AbilityToPayChecked", "sb-01"),
            ("PickupAppointmentSet", "sb-01"),
            ("SignedAndHandedOver", "sb-01"),
        ]
        assert all(event["at"] and event["recorded_at"] for event in events)
        assert events[0]["data"]["office_id"] == OFFICE
        assert {k: events[3]["data"][k] for k in ("amount_cents", "currency", "method")} == {
            "amount_cents": 2900,
            "currency": "EUR",
            "method": "mastercard",
        }
        final = served.http.get("/commitment-declarations/own", headers=own).json()
        assert final["status"] == "handed_over"
    finally:
        browser.close()
        served.stop()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert reference not in logged
    assert not [value for value in PERSONAL_VALUES if value in logged]


def test_a_payer_in_a_browser_is_sent_back_to_the_office(
    service: AkteService,
    settings: Settings,
    clock: FakeClock,
    issuer_key_file: Path,
    stand_in: StandInServer,
) -> None:
    served = ServedApp(
        build_app(
            app_settings(settings, issuer_key_file, payment_provider_url=stand_in.base_url),
            service,
        ),
        service,
    )
    served.start()
    browser = httpx.Client(trust_env=False, timeout=10, follow_redirects=False)
    try:
        reference = served.http.post(
            "/commitment-declarations", json=submission_json(clock.now.date())
        ).json()["reference"]
        own = {"X-Declaration-Reference": reference}
        redirect_url = served.http.post(
            "/commitment-declarations/own/payment", json={"method": "paypal"}, headers=own
        ).json()["redirect_url"]

        form = browser.post(
            redirect_url,
            content=b"method=paypal&outcome=failed",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

        assert form.status_code == 303
        back = form.headers["Location"]
        assert back.startswith(f"{served.base_url}/payments/return?")
        assert browser.get(back).status_code == 200
        status = served.http.get("/commitment-declarations/own", headers=own).json()
        assert status["payments"][0]["status"] == "failed"
        assert status["status"] == "fee_due"
    finally:
        browser.close()
        served.stop()


# ---------------------------------------------------------- the applicant's side


def test_the_applicant_sees_states_and_dates_but_no_personal_data(api: Api) -> None:
    reference = api.submit()
    api.pending_transaction(reference)

    response = api.own(reference)

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["status"] == "payment_pending"
    assert body["payments"][0]["redirect_url"].startswith("https://pay.example/pay/")
    assert not [value for value in PERSONAL_VALUES if value in response.text]
    assert "reference_sha256" not in response.text


def test_a_wrong_or_missing_reference_reveals_nothing(api: Api) -> None:
    api.submit()

    unknown = api.own("A" * 22)
    malformed = api.own("not a reference")
    missing = api.client.get("/commitment-declarations/own")

    assert unknown.status_code == malformed.status_code == 404
    assert unknown.json() == malformed.json()
    assert unknown.json()["type"] == PROBLEMS + "declaration-not-found"
    assert missing.status_code == 422


def test_public_submissions_go_to_the_default_office_and_choose_nothing_else(
    api: Api, settings: Settings
) -> None:
    chosen = api.client.post(
        "/commitment-declarations",
        json=submission_json(api.clock.now.date()) | {"office_id": "abh-nachbarstadt"},
    )
    too_young = api.client.post(
        "/commitment-declarations",
        json=submission_json(api.clock.now.date())
        | {
            "guarantor": submission_json(api.clock.now.date())["guarantor"]
            | {"date_of_birth": "2015-01-01"}
        },
    )
    no_means = api.client.post(
        "/commitment-declarations",
        json=submission_json(api.clock.now.date(), monthly_net_income_cents=None),
    )
    before = api.events()
    reference = api.submit()

    assert chosen.status_code == 422
    assert chosen.json()["errors"][0]["field"] == "office_id"
    assert too_young.json()["errors"][0]["field"] == "guarantor.date_of_birth"
    assert no_means.json()["errors"][0]["field"] == "monthly_net_income_cents"
    assert not [v for v in PERSONAL_VALUES if v in chosen.text + too_young.text]
    declaration_id = api.service.declarations.find_declaration_by_reference(reference)
    assert (
        api.service.declarations.get_declaration(declaration_id).office_id
        == settings.default_office_id
    )
    assert before == 0


def test_starting_a_payment_twice_answers_the_open_one(api: Api) -> None:
    reference = api.submit()

    first = api.pay_start(reference)
    second = api.pay_start(reference, method="paypal")

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["redirect_url"] == second.json()["redirect_url"]
    assert len(api.provider.orders) == 1


def test_a_paid_or_withdrawn_declaration_cannot_be_paid(api: Api, issuer: LocalIssuer) -> None:
    paid_reference = api.submit()
    api.notify(notification(api.pending_transaction(paid_reference)))
    withdrawn_reference = api.submit()
    declaration_id = api.service.declarations.find_declaration_by_reference(withdrawn_reference)
    withdrawn = api.client.post(
        f"/commitment-declarations/{declaration_id}/withdrawal",
        json={"reason": "Besuch abgesagt"},
        headers=bearer(issuer) | {"If-Match": '"2"'},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    before = api.events()

    again = api.pay_start(paid_reference)
    after_withdrawal = api.pay_start(withdrawn_reference)

    assert (again.status_code, again.json()["type"]) == (409, PROBLEMS + "fee-already-paid")
    assert after_withdrawal.status_code == 409
    assert after_withdrawal.json()["type"] == PROBLEMS + "declaration-withdrawn"
    assert api.events() == before


def test_an_unreachable_or_refusing_provider_records_nothing(
    service: AkteService,
    settings: Settings,
    clock: FakeClock,
    issuer_key_file: Path,
    stand_in: StandInServer,
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    unreachable = app_settings(
        settings, issuer_key_file, payment_provider_url=f"http://127.0.0.1:{port}"
    )
    # The stand-in refuses requests signed with another key: a misconfigured office.
    refusing = app_settings(
        settings,
        issuer_key_file,
        payment_provider_url=stand_in.base_url,
        payment_shared_secret=SecretStr("another key than the stand-in's, long enough"),
    )
    outcomes = []
    for app_config in (unreachable, refusing):
        with TestClient(build_app(app_config, service)) as client:
            reference = client.post(
                "/commitment-declarations", json=submission_json(clock.now.date())
            ).json()["reference"]
            before = service.recorder.max_notification_id()
            response = client.post(
                "/commitment-declarations/own/payment",
                json={"method": "visa"},
                headers={"X-Declaration-Reference": reference},
            )
            assert service.recorder.max_notification_id() == before
            outcomes.append((response.status_code, response.json()["type"]))

    assert outcomes == [
        (503, PROBLEMS + "payment-provider-unavailable"),
        (502, PROBLEMS + "payment-provider-error"),
    ]


def test_switched_off_payments_answer_503(
    service: AkteService, settings: Settings, clock: FakeClock, issuer_key_file: Path
) -> None:
    app = build_app(
        app_settings(settings, issuer_key_file),
        service,
        payments=PaymentsSwitchedOff("AKTE_PAYMENT_SHARED_SECRET is not set"),
    )
    with TestClient(app) as client:
        reference = client.post(
            "/commitment-declarations", json=submission_json(clock.now.date())
        ).json()["reference"]
        started = client.post(
            "/commitment-declarations/own/payment",
            json={"method": "visa"},
            headers={"X-Declaration-Reference": reference},
        )
        notified = client.post(
            NOTIFICATIONS,
            content=b"{}",
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: "sha256=00"},
        )

    assert (started.status_code, notified.status_code) == (503, 503)
    assert started.json()["type"] == PROBLEMS + "payments-unavailable"


# ------------------------------------------------------- the notification endpoint


def test_a_genuine_notification_is_recorded_once(api: Api) -> None:
    reference = api.submit()
    transaction_id = api.pending_transaction(reference)

    first = api.notify(notification(transaction_id))
    count = api.events()
    duplicate = api.notify(notification(transaction_id))
    late_failure = api.notify(notification(transaction_id, "failed"))

    assert (first.status_code, first.json()) == (200, {"outcome": "recorded"})
    assert duplicate.json() == late_failure.json() == {"outcome": "already_recorded"}
    assert (duplicate.status_code, late_failure.status_code) == (200, 200)
    assert api.events() == count
    assert api.own(reference).json()["fee"]["status"] == "paid"


@pytest.mark.parametrize(
    ("forge", "status", "problem"),
    [
        (lambda api, tx: api.notify(notification(tx), key=None), 401, "signature-required"),
        (
            lambda api, tx: api.notify(notification(tx), key=b"a key of somebody else, long"),
            401,
            INVALID,
        ),
        (
            lambda api, tx: api.notify(
                notification(tx),
                signature=signature_for(SECRET, json.dumps(notification(tx, "failed")).encode()),
            ),
            401,
            INVALID,
        ),
        (
            lambda api, tx: api.notify(notification(tx), signature="sha256=zz"),
            401,
            INVALID,
        ),
        (
            lambda api, tx: api.notify(notification(tx), signature="sha1=" + "0" * 40),
            401,
            INVALID,
        ),
        (lambda api, tx: api.notify(notification("TX-FORGED")), 404, "unknown-transaction"),
        (lambda api, tx: api.notify(notification(tx, amount_cents=1)), 422, "payment-mismatch"),
        (lambda api, tx: api.notify(notification(tx, currency="USD")), 422, "payment-mismatch"),
        (lambda api, tx: api.notify(b"{not json"), 422, "invalid-value"),
        (lambda api, tx: api.notify({"transaction_id": tx}), 422, "invalid-value"),
    ],
    ids=[
        "unsigned",
        "wrong-key",
        "signature-of-another-body",
        "malformed-signature",
        "sha1-signature",
        "unknown-transaction",
        "wrong-amount",
        "wrong-currency",
        "not-json",
        "missing-fields",
    ],
)
def test_a_refused_notification_records_nothing(
    api: Api, forge: Any, status: int, problem: str
) -> None:
    reference = api.submit()
    transaction_id = api.pending_transaction(reference)
    before = api.events()

    response = forge(api, transaction_id)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == PROBLEMS + problem
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("HMAC-SHA256")
    if status == 422 and problem == "payment-mismatch":
        assert response.json()["errors"][0]["field"] in ("amount_cents", "currency")
    assert transaction_id not in response.text
    assert api.events() == before
    assert api.own(reference).json()["fee"]["status"] == "payment_pending"


def test_signatures_compare_the_exact_bytes() -> None:
    body = b'{"transaction_id":"TX-1","status":"paid"}'
    header = signature_for(SECRET, body)

    assert signature_is_valid(SECRET, body, header)
    assert signature_is_valid(SECRET, body, header.upper().replace("SHA256=", "sha256="))
    assert signature_is_valid(SECRET, body, f" {header} ")
    assert not signature_is_valid(SECRET, body + b" ", header)
    assert not signature_is_valid(b"another key", body, header)
    assert not signature_is_valid(SECRET, body, None)
    assert not signature_is_valid(SECRET, body, header[:-1])
    assert not signature_is_valid(SECRET, body, "sha256=" + "ä" * 64)


def test_production_switches_payments_off_without_a_key_of_its_own(tmp_path: Path) -> None:
    def production(**changes: Any) -> Settings:
        fields: dict[str, Any] = {
            "deployment": "production",
            "data_dir": tmp_path,
            "public_base_url": "https://akte.example",
            "payment_provider_url": "https://epay.example",
            "payment_shared_secret": "k" * 40,
        }
        return Settings(**(fields | changes))

    assert isinstance(payments_for(production()), PaymentSetup)
    assert isinstance(payments_for(Settings(data_dir=tmp_path)), PaymentSetup)  # development
    for changes, named in (
        ({"payment_shared_secret": None}, "AKTE_PAYMENT_SHARED_SECRET"),
        ({"payment_shared_secret": "short"}, "AKTE_PAYMENT_SHARED_SECRET"),
        ({"payment_shared_secret": DEVELOPMENT_SHARED_SECRET}, "development key"),
        ({"public_base_url": None}, "AKTE_PUBLIC_BASE_URL"),
        ({"public_base_url": "http://akte.example"}, "AKTE_PUBLIC_BASE_URL"),
        ({"payment_provider_url": "http://epay.example"}, "AKTE_PAYMENT_PROVIDER_URL"),
        ({"payment_provider_name": "ePay BL"}, "AKTE_PAYMENT_PROVIDER_NAME"),
    ):
        switched_off = payments_for(production(**changes))
        assert isinstance(switched_off, PaymentsSwitchedOff), changes
        assert named in switched_off.reason
        assert "k" * 40 not in switched_off.reason


# ------------------------------------------------------------ caseworkers' side


def test_caseworker_writes_follow_if_match_and_the_rules(api: Api, issuer: LocalIssuer) -> None:
    reference = api.submit()
    declaration_id = api.service.declarations.find_declaration_by_reference(reference)
    url = f"/commitment-declarations/{declaration_id}"
    caseworker = bearer(issuer)
    before = api.events()

    too_early = api.client.post(
        url + "/handover", json={}, headers=caseworker | {"If-Match": '"2"'}
    )
    stale = api.client.post(
        url + "/ability-check", json={"passed": True}, headers=caseworker | {"If-Match": '"1"'}
    )
    missing = api.client.post(url + "/ability-check", json={"passed": True}, headers=caseworker)

    assert (too_early.status_code, too_early.json()["type"]) == (409, PROBLEMS + "fee-not-paid")
    assert (stale.status_code, stale.headers["ETag"]) == (412, '"2"')
    assert stale.json()["detail"].startswith("commitment declaration")
    assert missing.status_code == 428
    assert api.events() == before

    api.notify(notification(api.pending_transaction(reference)))
    refund = api.client.post(
        url + "/refund", json={"reason": "Ermessen"}, headers=caseworker | {"If-Match": '"4"'}
    )
    assert (refund.status_code, refund.json()["payment_number"]) == (200, 1)
    assert refund.headers["ETag"] == '"5"'


def test_a_caseworker_links_a_case_file_of_the_office(api: Api, issuer: LocalIssuer) -> None:
    reference = api.submit()
    declaration_id = api.service.declarations.find_declaration_by_reference(reference)
    caseworker = bearer(issuer)
    person = {
        "surname": "Yılmaz",
        "given_names": "Ayşe Nur",
        "date_of_birth": "1995-07-14",
        "nationality": "TUR",
        "passport_number": "U12345678",
    }
    own_case = api.client.post("/cases", json=person, headers=caseworker).json()["case_id"]
    their_case = api.client.post(
        "/cases", json=person, headers=bearer(issuer, "sb-91", office="abh-nachbarstadt")
    ).json()["case_id"]
    url = f"/commitment-declarations/{declaration_id}/case-link"

    refused = api.client.post(
        url, json={"case_id": their_case}, headers=caseworker | {"If-Match": '"2"'}
    )
    linked = api.client.post(
        url, json={"case_id": own_case}, headers=caseworker | {"If-Match": '"2"'}
    )

    assert (refused.status_code, refused.json()["errors"][0]["field"]) == (422, "case_id")
    assert linked.status_code == 200
    read = api.client.get(f"/commitment-declarations/{declaration_id}", headers=caseworker)
    assert read.json()["case_id"] == own_case


def test_other_offices_and_head_of_office_see_no_declaration(api: Api, issuer: LocalIssuer) -> None:
    declaration_id = api.service.declarations.find_declaration_by_reference(api.submit())
    url = f"/commitment-declarations/{declaration_id}"

    elsewhere = api.client.get(url, headers=bearer(issuer, "sb-91", office="abh-nachbarstadt"))
    unknown = api.client.get(
        f"/commitment-declarations/{UUID(int=7)}",
        headers=bearer(issuer, "sb-91", office="abh-nachbarstadt"),
    )
    auditor_elsewhere = api.client.get(
        url, headers=bearer(issuer, "au-09", Role.AUDITOR, "abh-nachbarstadt")
    )
    head = api.client.get(url, headers=bearer(issuer, "ho-01", Role.HEAD_OF_OFFICE))
    listed_elsewhere = api.client.get(
        "/commitment-declarations", headers=bearer(issuer, "sb-91", office="abh-nachbarstadt")
    )

    assert elsewhere.status_code == unknown.status_code == 404
    assert elsewhere.json()["type"] == unknown.json()["type"] == PROBLEMS + "declaration-not-found"
    assert auditor_elsewhere.status_code == 200
    assert head.status_code == 403
    assert listed_elsewhere.json() == []


def test_the_list_comes_in_pages(api: Api, issuer: LocalIssuer) -> None:
    for _ in range(3):
        api.submit()

    first = api.client.get("/commitment-declarations", params={"limit": 2}, headers=bearer(issuer))
    link = first.headers["Link"]
    next_url = link[link.index("<") + 1 : link.index(">")]
    second = api.client.get(next_url, headers=bearer(issuer))

    assert [len(first.json()), len(second.json())] == [2, 1]
    assert "Link" not in second.headers


# ---------------------------------------------------------- any delivery order

GENUINE_OUTCOMES: Final = ("paid", "failed", "expired")
FORGERIES: Final = (
    "unsigned",
    "wrong_key",
    "tampered",
    "wrong_amount",
    "wrong_currency",
    "unknown_transaction",
)
deliveries = st.lists(
    st.one_of(
        st.tuples(st.just("genuine"), st.integers(0, 2), st.sampled_from(GENUINE_OUTCOMES)),
        st.tuples(st.sampled_from(FORGERIES), st.integers(0, 2), st.sampled_from(GENUINE_OUTCOMES)),
    ),
    min_size=1,
    max_size=14,
)


def _deliver(api: Api, kind: str, transaction_id: str, outcome: str) -> httpx.Response:
    body = notification(transaction_id, outcome)
    if kind == "genuine":
        return api.notify(body)
    if kind == "unsigned":
        return api.notify(body, key=None)
    if kind == "wrong_key":
        return api.notify(body, key=b"a forger's guess at the shared key")
    if kind == "tampered":
        # Signed genuinely, then changed on the way: a hundred times the amount.
        signature = signature_for(SECRET, json.dumps(body).encode())
        return api.notify(body | {"amount_cents": 290_000}, signature=signature)
    if kind == "wrong_amount":
        return api.notify(notification(transaction_id, outcome, amount_cents=1))
    if kind == "wrong_currency":
        return api.notify(notification(transaction_id, outcome, currency="CHF"))
    return api.notify(notification("TX-FORGED-" + transaction_id, outcome))


def test_any_sequence_of_notifications_records_one_payment_per_genuine_transaction(
    service: AkteService, settings: Settings, clock: FakeClock, issuer_key_file: Path
) -> None:
    # One app for every draw: each draw works on declarations of its own.
    apis = build_api(service, settings, clock, issuer_key_file)
    api = next(apis)

    @hypothesis_settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(sequence=deliveries)
    def deliver_in_any_order(sequence: list[tuple[str, int, str]]) -> None:
        references = [api.submit() for _ in range(3)]
        transactions = [api.pending_transaction(reference) for reference in references]
        # The model: a payment's status, and how many reports are on record for it.
        status = ["pending"] * 3
        recorded = [0, 0, 0]
        for kind, index, outcome in sequence:
            before = api.events()
            response = _deliver(api, kind, transactions[index], outcome)
            if kind != "genuine":
                assert 400 <= response.status_code < 500, (kind, response.text)
                assert api.events() == before, kind
                continue
            changes = status[index] != "paid" and (outcome == "paid" or status[index] == "pending")
            assert response.status_code == 200, response.text
            assert response.json()["outcome"] == ("recorded" if changes else "already_recorded")
            assert api.events() == before + (1 if changes else 0)
            if changes:
                status[index] = outcome
                recorded[index] += 1
        for index, reference in enumerate(references):
            declaration = api.service.declarations.get_declaration(
                api.service.declarations.find_declaration_by_reference(reference)
            )
            types = [
                type(e).__name__
                for e in api.service.declarations.declaration_events(declaration.id)
            ]
            assert types.count("FeePaid") == (1 if status[index] == "paid" else 0)
            assert "SurplusPaymentReceived" not in types
            assert len(types) == 3 + recorded[index]
            assert declaration.payments[0].status == status[index]

    try:
        deliver_in_any_order()
    finally:
        apis.close()
