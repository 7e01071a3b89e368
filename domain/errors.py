"""Domain errors. Messages name rules and numbers, never personal data."""

from __future__ import annotations


class DomainError(Exception):
    """Base class of every error the domain raises on purpose."""

    code: str = "domain-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidValue(DomainError):
    """A value given to a command is malformed; ``field`` names the offending input."""

    code = "invalid-value"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class BusinessTimeBeforeFact(InvalidValue):
    """A command's business time (``field``) precedes a recorded fact it refers to
    (``fact``: the file's opening, the procedure's receipt, ...): such a history cannot
    have happened. Back-dating is lawful, but not to before what it builds on."""

    code = "business-time-before-fact"

    def __init__(self, field: str, fact: str) -> None:
        super().__init__(field, f"must not precede {fact}")
        self.fact = fact


class BusinessTimeInFuture(InvalidValue):
    """A business time lies further in the future than clocks may disagree. Its code is
    the one this refusal always had (clients rely on it); the problem names the fact."""

    def __init__(self, field: str, fact: str = "the office's clock") -> None:
        super().__init__(field, f"must not lie after {fact}")
        self.fact = fact


class RuleViolation(DomainError):
    """The command is well-formed but the case file's state does not allow it."""

    code = "rule-violation"


class PartNotFound(DomainError):
    """A numbered part of the case file (procedure, document, ...) does not exist."""

    code = "part-not-found"


class CaseFileNotActive(RuleViolation):
    code = "case-file-not-active"


class CaseFileErased(RuleViolation):
    """The person's data was erased (crypto-shredding): the file takes no more actions."""

    code = "case-file-erased"


class ProcedureNotFound(PartNotFound):
    code = "procedure-not-found"


class ProcedureStateConflict(RuleViolation):
    code = "procedure-state-conflict"


class OpenProceduresRemain(RuleViolation):
    code = "open-procedures-remain"


class DocumentNotFound(PartNotFound):
    code = "document-not-found"


class DocumentAlreadyReviewed(RuleViolation):
    code = "document-already-reviewed"


class ResidenceDocumentNotFound(PartNotFound):
    code = "residence-document-not-found"


class ResidenceDocumentEnded(RuleViolation):
    code = "residence-document-ended"


class FictionCertificateNotFound(PartNotFound):
    code = "fiction-certificate-not-found"


class FictionCertificateEnded(RuleViolation):
    code = "fiction-certificate-ended"


class CarrierSheetExhausted(RuleViolation):
    code = "carrier-sheet-exhausted"


class EntryProcedureNotFound(PartNotFound):
    code = "entry-procedure-not-found"


class EntryProcedureDecided(RuleViolation):
    code = "entry-procedure-decided"


class InquiryNotFound(PartNotFound):
    code = "inquiry-not-found"


class InquiryAlreadyAnswered(RuleViolation):
    code = "inquiry-already-answered"


class NothingToCorrect(RuleViolation):
    code = "nothing-to-correct"


# -- Commitment declarations (Verpflichtungserklärung) and their fee.


class DeclarationWithdrawn(RuleViolation):
    code = "declaration-withdrawn"


class DeclarationHandedOver(RuleViolation):
    code = "declaration-handed-over"


class DeclarationNotHandedOver(RuleViolation):
    code = "declaration-not-handed-over"


class FeeNotPaid(RuleViolation):
    code = "fee-not-paid"


class FeeAlreadyPaid(RuleViolation):
    code = "fee-already-paid"


class PaymentStillOpen(RuleViolation):
    code = "payment-still-open"


class AbilityToPayNotShown(RuleViolation):
    code = "ability-to-pay-not-shown"


class PaymentNotFound(PartNotFound):
    code = "payment-not-found"


class PaymentNotRefundable(RuleViolation):
    code = "payment-not-refundable"


class PaymentMismatch(InvalidValue):
    """A provider's report does not match the payment the office asked for."""

    code = "payment-mismatch"


# -- Contact form submissions.


class SubmissionAlreadyTriaged(RuleViolation):
    """A procedure was opened from it, it was answered or dismissed: triage is over."""

    code = "submission-already-triaged"


class SubmissionNotLinked(RuleViolation):
    code = "submission-not-linked"


class SubmissionFileNotFound(PartNotFound):
    code = "submission-file-not-found"
