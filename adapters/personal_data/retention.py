"""Retention rules as data, and the retention run that erases what is due.

The rules live in ``adapters/reference/retention-rules.json`` (or
``AKTE_RETENTION_RULES_PATH``): per rule its id, the legal basis, the fact the period
runs from (a trigger of :mod:`projections.worklists.retention_due`) and how many years. The
worklist of due files is the ``retention_due`` read model queried with these rules.

:func:`run_retention` is what ``akte retention run`` does: a dry run lists what is due;
with ``apply`` every due file is erased, the erasure naming the rule, its legal ground
and the person who approved the run. One file failing (it changed meanwhile, the store
hiccuped) does not stop the others; the report says which failed and why (ids and
error kinds only, never personal data).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Final
from uuid import UUID

from domain.case_file import require_code
from domain.erasure import ERASURE_GROUNDS
from domain.errors import DomainError
from projections.storage import ViewsStore
from projections.worklists.retention_due import TRIGGERS, DueFile, RetentionRule, due_files
from service import AkteService
from service_common import ServiceError

logger = logging.getLogger("akte.retention")

RETENTION_USER: Final = "retention-run"
"""Who acts in an erasure made by the retention run (the approver is recorded beside)."""


class InvalidRetentionRules(ValueError):
    """The rules file is malformed; the message names the rule and the field."""


def load_rules(path: Path | None = None) -> list[RetentionRule]:
    if path is None:
        text = (
            resources.files("adapters.reference")
            .joinpath("retention-rules.json")
            .read_text(encoding="utf-8")
        )
    else:
        text = path.read_text(encoding="utf-8")
    return parse_rules(json.loads(text))


def parse_rules(document: Any) -> list[RetentionRule]:
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        msg = "retention rules: expected an object with a list 'rules'"
        raise InvalidRetentionRules(msg)
    rules: list[RetentionRule] = []
    for number, entry in enumerate(document["rules"], start=1):
        where = f"retention rule {number}"
        if not isinstance(entry, dict):
            raise InvalidRetentionRules(f"{where}: must be an object")
        try:
            rule = RetentionRule(
                id=str(entry["id"]),
                label_de=str(entry.get("label_de", "")),
                legal_basis=str(entry["legal_basis"]),
                legal_ground=str(entry["legal_ground"]),
                runs_from=str(entry["runs_from"]),
                period_years=int(entry["period_years"]),
                event=str(entry.get("event", "")),
                verified=bool(entry.get("verified", False)),
            )
        except KeyError as missing:
            raise InvalidRetentionRules(f"{where}: {missing.args[0]} is missing") from None
        except (TypeError, ValueError):
            raise InvalidRetentionRules(f"{where}: period_years must be a number") from None
        try:
            require_code("id", rule.id)
        except DomainError:
            raise InvalidRetentionRules(f"{where}: id must be a lower-case code") from None
        if rule.runs_from not in TRIGGERS:
            known = ", ".join(TRIGGERS)
            raise InvalidRetentionRules(f"{where} ({rule.id}): runs_from must be one of {known}")
        if rule.legal_ground not in ERASURE_GROUNDS:
            known = ", ".join(ERASURE_GROUNDS)
            raise InvalidRetentionRules(f"{where} ({rule.id}): legal_ground must be one of {known}")
        if not 1 <= rule.period_years <= 100:
            raise InvalidRetentionRules(f"{where} ({rule.id}): period_years must be 1 to 100")
        if any(known.id == rule.id for known in rules):
            raise InvalidRetentionRules(f"{where}: id {rule.id} is used twice")
        rules.append(rule)
    return rules


@dataclass
class RetentionOutcome:
    due: DueFile
    erased: bool = False
    error: str | None = None
    """The kind of failure (an error class and its message, which never holds personal
    data)."""


@dataclass
class RetentionReport:
    today: date
    applied: bool
    approved_by: str | None
    rules: list[RetentionRule]
    outcomes: list[RetentionOutcome] = field(default_factory=list)

    @property
    def erased(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.erased)

    @property
    def failed(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.error is not None)

    def as_json(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "mode": "apply" if self.applied else "dry-run",
            "approved_by": self.approved_by,
            "due": len(self.outcomes),
            "erased": self.erased,
            "failed": self.failed,
            "files": [
                {
                    "case_id": o.due.case_id,
                    "office_id": o.due.office_id,
                    "reference": o.due.reference,
                    "rule_id": o.due.rule_id,
                    "legal_basis": o.due.legal_basis,
                    "runs_from": o.due.runs_from.isoformat(),
                    "due_on": o.due.due_on.isoformat(),
                    "days_overdue": o.due.days_overdue,
                    "erased": o.erased,
                    "error": o.error,
                }
                for o in self.outcomes
            ],
        }

    def as_text(self) -> str:
        mode = "dry run: nothing erased"
        if self.applied:
            mode = f"APPLIED, approved by {self.approved_by}"
        lines = [
            f"Retention run {self.today.isoformat()} ({mode})",
            f"{len(self.outcomes)} case files due for erasure"
            + (f", {self.erased} erased, {self.failed} failed" if self.applied else ""),
        ]
        unverified = [rule.id for rule in self.rules if not rule.verified]
        if unverified:
            lines.append("rules not yet confirmed against the statute: " + ", ".join(unverified))
        for outcome in self.outcomes:
            due = outcome.due
            state = ""
            if self.applied:
                state = "  erased" if outcome.erased else f"  FAILED: {outcome.error}"
            lines.append(
                f"  {due.reference:<20} {due.office_id:<20} {due.rule_id:<24} "
                f"due {due.due_on.isoformat()} ({due.days_overdue} days){state}"
            )
        return "\n".join(lines) + "\n"


def run_retention(
    service: AkteService,
    views: ViewsStore,
    rules: list[RetentionRule],
    *,
    today: date,
    office_ids: list[str] | None = None,
    apply: bool = False,
    approved_by: str | None = None,
    limit: int = 10_000,
) -> RetentionReport:
    """List the due files (dry run) or erase them (``apply``, with ``approved_by``)."""
    if apply and not approved_by:
        msg = "an erasure run needs the approving person (approved_by)"
        raise ValueError(msg)
    report = RetentionReport(today, apply, approved_by if apply else None, rules)
    by_id = {rule.id: rule for rule in rules}
    for due in due_files(views, rules, today=today, office_ids=office_ids, limit=limit):
        outcome = RetentionOutcome(due)
        report.outcomes.append(outcome)
        if not apply:
            continue
        assert approved_by is not None
        case_id = UUID(due.case_id)
        try:
            case = service.get_case(case_id)
            if case.is_erased:
                outcome.erased = True  # the read model had not seen it yet
                continue
            service.data_protection.erase_personal_data(
                case_id,
                expected_version=case.version,
                by=RETENTION_USER,
                legal_ground=by_id[due.rule_id].legal_ground,
                rule_id=due.rule_id,
                approved_by=approved_by,
            )
            outcome.erased = True
        except (DomainError, ServiceError) as error:
            outcome.error = f"{type(error).__name__}: {error}"
            logger.warning("retention run: case file %s not erased: %s", due.case_id, outcome.error)
    return report
