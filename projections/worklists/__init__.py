"""The worklists: read models of open items, each a module named after its question,
holding its projection (``PROJECTION``) and its query function.

:data:`WORKLISTS` are the caseworkers'; :mod:`projections.worklists.retention_due` (the
case files due for erasure) serves data protection and is listed in
:data:`projections.read_models.READ_MODELS` on its own.
"""

from __future__ import annotations

from typing import Final

from projections.projection import Projection
from projections.worklists import (
    commitment_declarations_awaiting_handover,
    deadlines,
    eat_cards_awaiting_handover,
    expiring_documents,
    notice_triage,
    open_procedures_by_assignee,
    overdue_document_requests,
    unassigned_procedures,
    unreviewed_uploads,
    untriaged_submissions,
)

WORKLISTS: Final[tuple[Projection, ...]] = (
    open_procedures_by_assignee.PROJECTION,
    unassigned_procedures.PROJECTION,
    overdue_document_requests.PROJECTION,
    expiring_documents.PROJECTION,
    eat_cards_awaiting_handover.PROJECTION,
    unreviewed_uploads.PROJECTION,
    commitment_declarations_awaiting_handover.PROJECTION,
    untriaged_submissions.PROJECTION,
    deadlines.PROJECTION,
    notice_triage.PROJECTION,
)
