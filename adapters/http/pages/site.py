"""Adds the public pages and their static files to the app."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Final

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from adapters.http.pages import booking, booking_status, contact, declaration, mailbox, start
from adapters.http.pages.errors import START_PAGE, PageArea

STATIC: Final = Path(__file__).parent / "static"
STATIC_PATH: Final = "/static"

PAGE_MODULES: Final = (start, mailbox, contact, declaration, booking_status, booking)
"""Every page module; each has a ``router`` of page routes (not in the OpenAPI document)."""


def N_(message: str) -> str:  # noqa: N802 - the gettext marker's conventional name
    """Marks a message for extraction; translated when the page is rendered."""
    return message


PAGE_AREAS: Final = (
    PageArea(START_PAGE, "start", START_PAGE, N_("Online services")),
    # The booking and booking status pages.
    PageArea(booking.START_PATH, booking.MODULE, booking.START_PATH, N_("Book an appointment")),
    PageArea(
        contact.CONTACT_PATH,
        contact.MODULE,
        contact.CONTACT_PATH,
        N_("Write to us"),
        takes_files=True,
    ),
    PageArea(
        declaration.DECLARATION_PATH,
        declaration.MODULE,
        declaration.DECLARATION_PATH,
        N_("Commitment declaration"),
    ),
    # Development only: in production nothing is there to go back to.
    PageArea(mailbox.MAILBOX_PATH, "mailbox", START_PAGE, N_("Online services")),
)
"""Where the pages of :data:`PAGE_MODULES` live: every error answered to a request in one
of them is a page in the visitor's language (:mod:`.errors`), not a JSON problem. A test
checks that every page route lies in one."""


def install_pages(app: FastAPI) -> None:
    for module in PAGE_MODULES:
        app.include_router(module.router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC), name="static")


def page_paths() -> frozenset[str]:
    """The paths of every page route, so that API-wide checks can tell pages apart."""
    return frozenset(
        getattr(route, "path", "") for module in PAGE_MODULES for route in module.router.routes
    )


def form_media_types() -> dict[str, Collection[str]]:
    """The paths whose forms post as browsers do (urlencoded), for the body checks."""
    return {
        **booking.FORM_MEDIA_TYPES,
        **booking_status.FORM_MEDIA_TYPES,
        **declaration.FORM_MEDIA_TYPES,
    }


def form_body_limits() -> dict[str, int]:
    """The small public forms' own body limits (below the app's default)."""
    return {**booking.BODY_LIMITS, **declaration.BODY_LIMITS}
