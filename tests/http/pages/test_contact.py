"""The contact form page: topics from the catalogue, files checked like the API's, a
receipt page, and a refused form that keeps what was typed and names the files to
choose again."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Final

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app, build_service
from adapters.http.pages.languages import LANGUAGES, languages_of
from adapters.http.pages.translations import translations_for
from adapters.reference.catalogue import load_catalogue
from adapters.settings import Settings
from adapters.simulation.legacy_scans import make_pdf, make_png
from service import AkteService

FIELDS: Final[dict[str, str]] = {
    "topic": "extend_residence_permit",
    "message": "Mein Titel läuft am 1. Mai ab.\nBitte um einen Termin.",
    "surname": "Yılmaz",
    "given_names": "Ayşe Nur",
    "email": "ayse.yilmaz@example.org",
    "date_of_birth": "1991-07-14",
    "file_number": "2019-ab12",
}
LIMITS: Final[dict[str, int]] = {
    "contact_form_max_files": 3,
    "contact_form_max_file_bytes": 65_536,
    "contact_form_max_total_bytes": 98_304,
}

Upload = tuple[str, tuple[str, bytes, str]]
NO_FILE: Final[list[Upload]] = [("files", ("", b"", "application/octet-stream"))]
"""What a browser sends for a file input left empty: the form is multipart all the same."""


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, AkteService]]:
    settings = Settings(
        store="sqlite",
        data_dir=tmp_path_factory.mktemp("contact-page") / "data",
        rate_limit_contact_form=None,
        rate_limit_lookups=None,
        **LIMITS,  # type: ignore[arg-type]
    )
    built = build_service(settings)
    try:
        with TestClient(build_app(settings, built)) as test_client:
            yield test_client, built
    finally:
        built.close()


@pytest.fixture
def browser(client: tuple[TestClient, AkteService]) -> TestClient:
    test_client = client[0]
    test_client.cookies.clear()
    return test_client


@pytest.fixture
def akte(client: tuple[TestClient, AkteService]) -> AkteService:
    return client[1]


def pdf(name: str, pages: int = 1, payload_bytes: int = 0) -> Upload:
    data = make_pdf(pages, marker=name, payload_bytes=payload_bytes)
    return ("files", (name, data, "application/pdf"))


def head(service: AkteService) -> int:
    return service.recorder.max_notification_id() or 0


def field_value(page: str, name: str) -> str:
    found = re.search(rf'<input id="{name}" name="{name}" type="\w+" value="([^"]*)"', page)
    assert found is not None, name
    return html.unescape(found.group(1))


# ------------------------------------------------------------------ the form


def test_the_form_offers_every_catalogue_topic_and_states_the_limits(browser: TestClient) -> None:
    response = browser.get("/contact?lang=en")

    assert response.status_code == 200
    page = response.text
    for code in load_catalogue().contact_topics:
        assert f'name="topic" value="{code}"' in page
    # Plain words first, the catalogue's own label as small print.
    assert "My residence permit runs out and I want to extend it" in page
    assert "<small>Extend residence permit</small>" in page
    assert "Up to 3 files, each at most 64 KB, together at most 96 KB." in page
    assert 'enctype="multipart/form-data"' in page
    assert 'data-max-files="3" data-max-file-bytes="65536" data-max-total-bytes="98304"' in page
    assert '<script src="/static/contact/files.js" defer></script>' in page
    for name in ("message", "surname", "given_names", "email", "date_of_birth", "file_number"):
        assert f'name="{name}"' in page
    assert 'type="file" id="files" name="files" multiple' in page


def test_the_german_form_labels_topics_in_the_catalogues_german(browser: TestClient) -> None:
    page = browser.get("/contact?lang=de").text

    assert "<small>Verlängerung Aufenthaltstitel (befristet)</small>" in page
    assert "Mein Aufenthaltstitel läuft ab und ich möchte ihn verlängern" in page


def test_the_browser_check_script_is_served_from_akte(browser: TestClient) -> None:
    response = browser.get("/static/contact/files.js")

    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    # It reads the limits and messages the page gives it.
    for attribute in ("maxFiles", "maxFileBytes", "maxTotalBytes", "tooLarge", "wrongType"):
        assert f"dataset.{attribute}" in response.text


@pytest.mark.parametrize("code", languages_of("contact"))
def test_the_form_in_every_language_of_the_module(browser: TestClient, code: str) -> None:
    response = browser.get(f"/contact?lang={code}")

    assert response.status_code == 200
    assert response.headers["content-language"] == code
    assert f'<html lang="{code}" dir="{LANGUAGES[code].direction}">' in response.text
    title = translations_for(code).gettext("Write to the foreigners' office")
    assert f"<h1>{title}</h1>" in html.unescape(response.text)
    if code != "en":
        assert title != "Write to the foreigners' office"


def test_the_arabic_form_reads_right_to_left(browser: TestClient) -> None:
    assert '<html lang="ar" dir="rtl">' in browser.get("/contact?lang=ar").text


# ------------------------------------------------------------- submitting


def test_two_files_are_sent_and_the_receipt_is_shown(
    browser: TestClient, akte: AkteService
) -> None:
    browser.get("/contact?lang=en")  # the visitor picks English; a cookie keeps it
    sent = browser.post(
        "/contact",
        data=FIELDS,
        files=[pdf("Reisepass.pdf", pages=2), ("files", ("foto.png", make_png("f"), "image/png"))],
        follow_redirects=False,
    )

    assert sent.status_code == 303, sent.text
    location = sent.headers["location"]
    receipt = location.removeprefix("/contact/receipt/")
    assert re.fullmatch(r"KF(-[0-9A-Z]{5}){4}", receipt)
    page = browser.get(location)
    assert page.status_code == 200
    assert f'<p class="receipt-number" id="receipt">{receipt}</p>' in page.text
    assert "What happens next" in page.text
    submission = akte.intake.get_submission(akte.intake.find_submission_by_receipt(receipt))
    assert submission.topic == "extend_residence_permit"
    assert submission.message == FIELDS["message"]
    assert submission.contact.surname == "Yılmaz"
    assert submission.contact.file_number == "2019-ab12"
    assert submission.file_names == ["Reisepass.pdf", "foto.png"]
    assert [(f.media_type, f.page_count) for f in submission.files] == [
        ("application/pdf", 2),
        ("image/png", 1),
    ]
    # The caseworkers' list of what waits for triage has it.
    waiting = akte.intake.list_untriaged_submissions(office_ids=None, limit=1000)
    assert submission.id in [item.id for item in waiting.submissions]


def test_a_file_part_named_only_by_filename_star_is_refused_not_dropped(
    browser: TestClient, akte: AkteService
) -> None:
    """RFC 5987's ``filename*=`` alone (no ``filename=``) makes the part a text field for
    the form parser: the page must not answer "arrived" while the file is lost."""
    fields = b"".join(
        b'--B\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
        % (name.encode(), value.encode())
        for name, value in FIELDS.items()
    )
    file_part = (
        b'--B\r\nContent-Disposition: form-data; name="files"; '
        b"filename*=UTF-8''Reisepass%20%C3%BC.pdf\r\nContent-Type: application/pdf\r\n\r\n"
        + make_pdf(1)
        + b"\r\n--B--\r\n"
    )
    before = head(akte)

    answer = browser.post(
        "/contact?lang=en",
        content=fields + file_part,
        headers={"content-type": "multipart/form-data; boundary=B"},
        follow_redirects=False,
    )

    assert answer.status_code == 422, answer.text
    assert "cannot be read" in answer.text
    assert head(akte) == before


def test_a_message_without_files_is_sent_too(browser: TestClient) -> None:
    sent = browser.post(
        "/contact",
        data=FIELDS | {"topic": "general_question"},
        files=NO_FILE,
        follow_redirects=False,
    )

    assert sent.status_code == 303
    assert sent.headers["location"].startswith("/contact/receipt/KF-")


def test_a_refused_form_keeps_what_was_typed_and_names_the_files_to_choose_again(
    browser: TestClient, akte: AkteService
) -> None:
    before = head(akte)

    refused = browser.post(
        "/contact?lang=en",
        data=FIELDS | {"message": "", "email": "not an address"},
        files=[
            pdf("Reisepass Ayşe.pdf"),
            ("files", ("notes.txt", b"plain text, not a document", "text/plain")),
        ],
        follow_redirects=False,
    )

    assert refused.status_code == 422
    page = html.unescape(refused.text)
    summary = page[page.index('id="error-summary"') :]
    summary = summary[: summary.index("</div>")]
    for anchor in ("#message", "#email", "#files"):
        assert f'href="{anchor}"' in summary
    assert 'id="message-error"' in page
    assert 'id="email-error"' in page
    assert "notes.txt is not a PDF, JPEG or PNG file." in page
    # Every typed value is still there ...
    assert field_value(page, "surname") == "Yılmaz"
    assert field_value(page, "given_names") == "Ayşe Nur"
    assert field_value(page, "email") == "not an address"
    assert field_value(page, "date_of_birth") == "1991-07-14"
    assert field_value(page, "file_number") == "2019-ab12"
    assert 'name="topic" value="extend_residence_permit" checked' in page
    # ... and the files, which no browser keeps, are named to be chosen again.
    again = page[page.index('id="files-again"') :]
    again = again[: again.index("</div>")]
    assert "<li>Reisepass Ayşe.pdf</li>" in again
    assert "<li>notes.txt</li>" in again
    assert head(akte) == before


def test_the_message_is_kept_with_its_line_breaks(browser: TestClient) -> None:
    refused = browser.post(
        "/contact", data=FIELDS | {"surname": ""}, files=NO_FILE, follow_redirects=False
    )

    assert refused.status_code == 422
    assert f">{FIELDS['message']}</textarea>" in html.unescape(refused.text)


def test_a_message_as_long_as_the_page_allows_is_taken_with_its_line_breaks(
    browser: TestClient, akte: AkteService
) -> None:
    # 4000 characters as the browser counts them against maxlength (a line break is one):
    # 3960 letters and 40 line breaks, each sent as CR LF (4040 characters on the wire).
    as_typed = ("x" * 98 + "\n") * 40 + "x" * (4000 - 99 * 40)
    assert len(as_typed) == 4000
    assert 'maxlength="4000"' in browser.get("/contact").text

    sent = browser.post(
        "/contact",
        data=FIELDS | {"message": as_typed.replace("\n", "\r\n")},
        files=NO_FILE,
        follow_redirects=False,
    )

    assert sent.status_code == 303, sent.text[:500]
    receipt = sent.headers["location"].removeprefix("/contact/receipt/")
    submission = akte.intake.get_submission(akte.intake.find_submission_by_receipt(receipt))
    assert submission.message == as_typed  # "\n" line breaks, none lost


def test_a_lone_carriage_return_is_taken_as_a_line_break(
    browser: TestClient, akte: AkteService
) -> None:
    sent = browser.post(
        "/contact",
        data=FIELDS | {"message": "Erste Zeile\rZweite Zeile\r\nDritte"},
        files=NO_FILE,
        follow_redirects=False,
    )

    assert sent.status_code == 303, sent.text[:500]
    receipt = sent.headers["location"].removeprefix("/contact/receipt/")
    submission = akte.intake.get_submission(akte.intake.find_submission_by_receipt(receipt))
    assert submission.message == "Erste Zeile\nZweite Zeile\nDritte"


def test_a_file_over_the_limit_is_named(browser: TestClient, akte: AkteService) -> None:
    before = head(akte)

    refused = browser.post(
        "/contact?lang=en",
        data=FIELDS,
        files=[pdf("klein.pdf"), pdf("Scan groß.pdf", payload_bytes=70_000)],
        follow_redirects=False,
    )

    assert refused.status_code == 422
    assert "Scan groß.pdf is larger than 64 KB." in html.unescape(refused.text)
    assert head(akte) == before


def test_too_many_files_are_refused_with_the_limit(browser: TestClient) -> None:
    refused = browser.post(
        "/contact?lang=en",
        data=FIELDS,
        files=[pdf(f"seite-{number}.pdf") for number in range(4)],
        follow_redirects=False,
    )

    assert refused.status_code == 422
    assert "Choose at most 3 files." in refused.text


def test_files_together_over_the_limit_are_refused(browser: TestClient) -> None:
    refused = browser.post(
        "/contact?lang=en",
        data=FIELDS,
        files=[pdf(f"teil-{number}.pdf", payload_bytes=40_000) for number in range(3)],
        follow_redirects=False,
    )

    assert refused.status_code == 422
    assert "All files together are larger than 96 KB." in refused.text


def test_an_unknown_topic_is_refused_by_the_service_and_shown_at_the_field(
    browser: TestClient,
) -> None:
    refused = browser.post(
        "/contact?lang=en",
        data=FIELDS | {"topic": "no_such_topic"},
        files=NO_FILE,
        follow_redirects=False,
    )

    assert refused.status_code == 422
    assert 'id="topic-error"' in refused.text
    assert "Choose one of the topics listed." in refused.text


def test_a_body_over_the_contact_forms_limit_is_refused_before_the_page_runs(
    browser: TestClient, akte: AkteService
) -> None:
    before = head(akte)
    # The form's own limit: all files, one file more, and room for the text fields (64 KiB).
    too_large = 98_304 + 65_536 + 65_536 + 1

    refused = browser.post(
        "/contact?lang=uk",
        data=FIELDS,
        files=[("files", ("gross.pdf", b"%PDF" + b"0" * too_large, "application/pdf"))],
    )

    assert refused.status_code == 413
    # A page in the visitor's language that states the limits, not a JSON problem.
    assert refused.headers["content-type"].startswith("text/html")
    assert refused.headers["content-language"] == "uk"
    heading = translations_for("uk").gettext("What you sent is too large")
    assert f"<h1>{html.escape(heading, quote=False)}</h1>" in refused.text
    assert "96 KB" in refused.text
    assert head(akte) == before


def test_a_file_over_its_limit_within_the_pages_body_limit_is_named_by_the_page(
    browser: TestClient, akte: AkteService
) -> None:
    before = head(akte)

    # Larger than all files together may be, but within the body the page takes.
    refused = browser.post(
        "/contact?lang=en",
        data=FIELDS,
        files=[pdf("gross.pdf", payload_bytes=98_304 + 10_000)],
        follow_redirects=False,
    )

    assert refused.status_code == 422
    assert "gross.pdf is larger than 64 KB." in refused.text
    assert head(akte) == before


def test_files_each_within_their_limit_but_over_the_total_are_refused_by_the_page(
    browser: TestClient,
) -> None:
    # Three files of nearly the largest size: more than all together may be, within the
    # body the page takes; the page says so itself (no 413).
    refused = browser.post(
        "/contact?lang=en",
        data=FIELDS,
        files=[pdf(f"teil-{number}.pdf", payload_bytes=60_000) for number in range(3)],
        follow_redirects=False,
    )

    assert refused.status_code == 422
    assert "All files together are larger than 96 KB." in refused.text


def test_a_receipt_that_cannot_be_one_is_not_found(browser: TestClient) -> None:
    assert browser.get("/contact/receipt/nonsense").status_code == 404


@pytest.mark.parametrize(
    ("language", "query", "headers", "heading"),
    [
        ("de", "?lang=de", {}, "Diese Adresse enthält keine Eingangsnummer"),
        ("en", "", {"accept-language": "en-GB,en;q=0.8"}, "This address holds no receipt number"),
    ],
    ids=["de", "en"],
)
def test_a_receipt_that_cannot_be_one_shows_a_page_in_the_visitors_language(
    browser: TestClient, language: str, query: str, headers: dict[str, str], heading: str
) -> None:
    response = browser.get(f"/contact/receipt/nonsense{query}", headers=headers)

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-language"] == language
    assert f'<html lang="{language}" dir="ltr">' in response.text
    main = re.search(r"<main\b[^>]*>(.*)</main>", response.text, re.DOTALL)
    assert main is not None
    assert f"<h1>{heading}</h1>" in html.unescape(main.group(1))
    assert '<a href="/contact">' in main.group(1)  # where to start again
    assert "nonsense" not in main.group(1)


@pytest.mark.parametrize("lang", ["en", "uk"])
def test_a_receipt_nothing_was_received_under_is_not_found(
    browser: TestClient, akte: AkteService, lang: str
) -> None:
    made_up = "KF-00000-00000-00000-00000"  # well formed, never given
    before = head(akte)

    response = browser.get(f"/contact/receipt/{made_up}?lang={lang}")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-language"] == lang
    catalogue = translations_for(lang)
    heading = html.escape(catalogue.gettext("This address holds no receipt number"), quote=False)
    assert f"<h1>{heading}</h1>" in response.text
    arrived = catalogue.gettext("Your message has arrived")
    assert arrived not in response.text
    assert html.escape(arrived) not in response.text
    main = re.search(r"<main\b[^>]*>(.*)</main>", response.text, re.DOTALL)
    assert main is not None
    assert made_up not in main.group(1)
    assert head(akte) == before  # a look-up writes nothing


def test_a_received_receipt_is_confirmed_however_it_is_quoted(browser: TestClient) -> None:
    sent = browser.post("/contact", data=FIELDS, files=NO_FILE, follow_redirects=False)
    receipt = sent.headers["location"].removeprefix("/contact/receipt/")

    for quoted in (receipt, receipt.lower()):
        page = browser.get(f"/contact/receipt/{quoted}?lang=en")
        assert page.status_code == 200
        assert "<h1>Your message has arrived</h1>" in page.text
        assert f'<p class="receipt-number" id="receipt">{receipt}</p>' in page.text


def test_the_receipt_page_counts_against_the_look_ups_rate(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    settings = Settings(
        store="sqlite",
        data_dir=tmp_path_factory.mktemp("contact-receipt-rate") / "data",
        rate_limit_contact_form=None,
        rate_limit_lookups="2/minute",
    )
    built = build_service(settings)
    try:
        with TestClient(build_app(settings, built)) as test_client:
            statuses = [
                test_client.get("/contact/receipt/KF-00000-00000-00000-0000" + str(n)).status_code
                for n in range(3)
            ]
        assert statuses == [404, 404, 429]
    finally:
        built.close()


def test_the_contact_page_takes_more_than_the_apis_default_body_limit(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # The default limit of JSON bodies (1 MiB) must not cap the form's uploads (25 MiB).
    settings = Settings(
        store="sqlite",
        data_dir=tmp_path_factory.mktemp("contact-default") / "data",
        rate_limit_contact_form=None,
    )
    built = build_service(settings)
    try:
        with TestClient(build_app(settings, built)) as test_client:
            sent = test_client.post(
                "/contact",
                data=FIELDS,
                files=[pdf("scan.pdf", payload_bytes=2 * settings.max_body_bytes)],
                follow_redirects=False,
            )
        assert sent.status_code == 303, sent.text[:500]
    finally:
        built.close()
