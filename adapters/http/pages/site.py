"""Adds the public pages and their static files to the app."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Final

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from adapters.http.pages import booking, booking_status, contact, declaration, mailbox, start

STATIC: Final = Path(__file__).parent / "static"
STATIC_PATH: Final = "/static"

PAGE_MODULES: Final = (start, mailbox, contact, declaration, booking_status, booking)
"""Every page module; each has a ``router`` of page routes (not in the OpenAPI document)."""


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
