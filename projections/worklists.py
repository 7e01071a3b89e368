"""The caseworkers' worklists: every read model the runner follows by default.

Each worklist is one module named after its question, holding its projection
(``PROJECTION``) and its query function.
"""

from __future__ import annotations

from typing import Final

from projections import (
    commitment_declarations_awaiting_handover,
    eat_cards_awaiting_handover,
    expiring_documents,
    open_procedures_by_assignee,
    overdue_document_requests,
    unassigned_procedures,
    unreviewed_uploads,
    untriaged_submissions,
)
from projections.engine import Projection

WORKLISTS: Final[tuple[Projection, ...]] = (
    open_procedures_by_assignee.PROJECTION,
    unassigned_procedures.PROJECTION,
    overdue_document_requests.PROJECTION,
    expiring_documents.PROJECTION,
    eat_cards_awaiting_handover.PROJECTION,
    unreviewed_uploads.PROJECTION,
    commitment_declarations_awaiting_handover.PROJECTION,
    untriaged_submissions.PROJECTION,
)
