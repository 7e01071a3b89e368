"""The contact form page in a real browser (German and Arabic): the empty form, the form
refused with every typed value kept and the errors listed, and a message with two
documents sent to the receipt page, each axe-clean, and then on the caseworkers'
worklist of untriaged submissions. Screenshots:
``test-output/pages/contact-*.png``."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import FilePayload, Page, expect

from adapters.views.runner import ProjectionRunner
from tests.support.browser import check_accessible, document_files, screenshot
from tests.support.live_server import ServedApp

pytestmark = pytest.mark.browser

LANGUAGES = ("de", "ar")
TOPIC = "extend_residence_permit"


def fill_in(page: Page) -> None:
    page.locator(f"input[name=topic][value={TOPIC}]").check()
    page.locator("#message").fill("Mein Titel läuft am 1. Mai ab. Welche Unterlagen fehlen?")
    page.locator("#surname").fill("Yılmaz")
    page.locator("#given_names").fill("Ayşe Nur")
    page.locator("#email").fill("ayse.yilmaz@example.org")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_contact_form_is_accessible(page: Page, lang: str) -> None:
    page.goto(f"/contact?lang={lang}")

    expect(page.locator("html")).to_have_attribute("dir", "rtl" if lang == "ar" else "ltr")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.locator("input[name=topic]").first).to_be_visible()
    check_accessible(page, f"contact form ({lang})")
    screenshot(page, f"contact-form-{lang}")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_refused_message_comes_back_with_what_was_typed_and_the_errors(
    page: Page, lang: str
) -> None:
    page.goto(f"/contact?lang={lang}")
    page.locator("#message").fill("Nur eine Nachricht, sonst nichts.")
    page.locator("#email").fill("not an address")

    page.locator("#contact-form button[type=submit]").click()

    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    # Topic, family name, given names and the e-mail address are refused; each is listed
    # and leads to its field, which says so too.
    for field in ("topic", "surname", "given_names", "email"):
        expect(summary.locator(f"a[href='#{field}']")).to_have_count(1)
        expect(page.locator(f"#{field}-error")).to_be_visible()
    expect(page.locator("#message")).to_have_value("Nur eine Nachricht, sonst nichts.")
    expect(page.locator("#email")).to_have_value("not an address")
    expect(page.locator("#email")).to_have_attribute("aria-invalid", "true")
    check_accessible(page, f"contact form refused ({lang})")
    screenshot(page, f"contact-refused-{lang}")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_message_with_two_documents_gets_a_receipt_and_reaches_the_worklist(
    page: Page,
    live: ServedApp,
    worklists: ProjectionRunner,
    caseworker: dict[str, str],
    lang: str,
) -> None:
    page.goto(f"/contact?lang={lang}")
    fill_in(page)
    page.locator("#files").set_input_files(document_files())

    page.locator("#contact-form button[type=submit]").click()

    expect(page).to_have_url(re.compile(r"/contact/receipt/"))
    receipt = page.locator("#receipt").inner_text().strip()
    submission_id = live.service.intake.find_submission_by_receipt(receipt)
    submission = live.service.intake.get_submission(submission_id)
    assert submission.topic == TOPIC
    assert [document.media_type for document in submission.files] == [
        "application/pdf",
        "image/png",
    ]
    expect(page.locator("html")).to_have_attribute("lang", lang)
    check_accessible(page, f"contact receipt ({lang})")
    screenshot(page, f"contact-receipt-{lang}")

    # The caseworker's worklist of untriaged submissions shows it, once the read models
    # have followed the log (the first time in a run, from its start: more than the
    # route's own brief wait), and without the sender's personal data.
    position = live.events_recorded()
    assert worklists.wait_until(position, 60), "the read models did not follow the log"
    answer = live.http.get(
        "/worklists/untriaged-submissions",
        params={"min_position": position, "limit": 200},
        headers=caseworker,
    )
    assert answer.status_code == 200, answer.text
    assert "X-Akte-Views-Behind" not in answer.headers
    (row,) = [
        item for item in answer.json()["items"] if item["submission_id"] == str(submission_id)
    ]
    assert row["topic"] == TOPIC
    assert row["file_count"] == 2
    assert row["page_count"] == sum(document.page_count for document in submission.files)
    assert row["linked_case_id"] is None
    assert "Yılmaz" not in answer.text
    assert "ayse.yilmaz@example.org" not in answer.text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_files_the_office_would_refuse_are_named_before_anything_is_sent(
    page: Page, live: ServedApp, lang: str
) -> None:
    page.goto(f"/contact?lang={lang}")
    fill_in(page)
    limit = int(page.locator("#files").get_attribute("data-max-file-bytes") or "0")
    assert limit > 0
    before = live.events_recorded()

    refused: list[FilePayload] = [
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a document"},
        {"name": "scan.pdf", "mimeType": "application/pdf", "buffer": b"%" * (limit + 1)},
    ]
    page.locator("#files").set_input_files(refused)

    check = page.locator("#files-check")
    expect(check.locator("li")).to_have_count(2)
    expect(check).to_contain_text("notes.txt")
    expect(check).to_contain_text("scan.pdf")
    expect(page.locator("#files")).to_have_attribute("aria-invalid", "true")
    page.locator("#contact-form button[type=submit]").click()
    # The script kept the form here: nothing was uploaded or recorded.
    expect(page).to_have_url(re.compile(r"/contact\?lang="))
    expect(page.locator("#files")).to_be_focused()
    assert live.events_recorded() == before
    check_accessible(page, f"contact files checked in the browser ({lang})")
    screenshot(page, f"contact-files-checked-{lang}")
