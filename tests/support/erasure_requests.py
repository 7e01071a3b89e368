"""Erasure with four eyes, as tests need it: one person requests, a second approves."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx2 as httpx
from fastapi.testclient import TestClient

from service import AkteService
from service_common import Recorded
from service_data_protection import Erasure

REQUESTER = "tl-01"
APPROVER = "dsb-01"


def erase_with_four_eyes(
    service: AkteService,
    case_id: UUID,
    *,
    legal_ground: str = "dsgvo-17",
    requested_by: str = REQUESTER,
    approved_by: str = APPROVER,
) -> Recorded[Erasure]:
    """Request the erasure as ``requested_by``, approve it as ``approved_by``."""
    requested = service.erasure_requests.request(
        case_id, by=requested_by, legal_ground=legal_ground
    )
    approval = service.erasure_requests.approve(case_id, requested.request.number, by=approved_by)
    return approval.erasure


def erase_over_http(
    client: TestClient | httpx.Client,
    case_id: UUID | str,
    *,
    requester: dict[str, str],
    approver: dict[str, str],
    legal_ground: str = "dsgvo-17",
) -> Any:
    """Request the erasure with the requester's token, approve it with the approver's;
    returns the approval's response."""
    requested = client.post(
        f"/cases/{case_id}/erasure-requests",
        json={"legal_ground": legal_ground},
        headers=requester,
    )
    assert requested.status_code == 201, requested.text
    number = requested.json()["number"]
    return client.post(f"/cases/{case_id}/erasure-requests/{number}/approval", headers=approver)
