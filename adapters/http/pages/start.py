"""The start page: the office's public services, in plain words."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from adapters.http.auth.permissions import Permission, allow_public
from adapters.http.deps import SettingsDep
from adapters.http.pages.languages import languages_of
from adapters.http.pages.rendering import render

router = APIRouter(include_in_schema=False)

Visitor = Annotated[object, Depends(allow_public(Permission.CATALOGUE_READ))]


@router.get("/", response_class=HTMLResponse)
def start_page(request: Request, visitor: Visitor, settings: SettingsDep) -> HTMLResponse:
    return render(
        request,
        "start.html.j2",
        {"office_id": settings.default_office_id},
        offered=languages_of("start"),
    )
