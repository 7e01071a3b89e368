"""Every sentence template of the German summary, with 0, 1 and many: the sentence says
the figure it states (exactly, or as a press release rounds it, honestly) and its German
agrees in number (singular with 1, plural otherwise, the verb with its subject)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from adapters.reports.yearly_report import approximately, german_number, german_summary
from projections.figures.yearly_report import FEE_PAYMENTS, Figure, YearlyReport

YEAR = 2024
MANY = 1234.0
"""Said as a press release says it: "über 1.200"."""


def _figure(key: str, value: float | None, unit: str = "count", **extra: object) -> Figure:
    return Figure(key, key, unit, value, None, "", **extra)  # type: ignore[arg-type]


def _report(*figures: Figure) -> YearlyReport:
    return YearlyReport("abh-test", YEAR, tuple(figures), (), 0)


def _said(value: float) -> str:
    return approximately(value)


# key: (the clause for a value, as it must read)
CLAUSES: dict[str, Callable[[float], str]] = {
    "customers": lambda v: (
        f"betreute im Jahr {YEAR} {_said(v)} "
        f"{'Kundin oder Kunden' if v == 1 else 'Kundinnen und Kunden'} auf allen Wegen."
    ),
    "appointments_served": lambda v: (
        f"führte im Jahr {YEAR} {_said(v)} {'Termin' if v == 1 else 'Termine'} vor Ort durch."
    ),
    "procedures_processed": lambda v: (
        f"bearbeitete im Jahr {YEAR} {_said(v)} {'Vorgang' if v == 1 else 'Vorgänge'}."
    ),
    "residence_documents_issued": lambda v: (
        f"stellte im Jahr {YEAR} {_said(v)} "
        + (
            "elektronischen Aufenthaltstitel, Duldung oder Aufenthaltsgestattung"
            if v == 1
            else "elektronische Aufenthaltstitel, Duldungen und Aufenthaltsgestattungen"
        )
        + " aus."
    ),
    "fiction_certificates_issued": lambda v: (
        f"stellte im Jahr {YEAR} {_said(v)} "
        f"{'Fiktionsbescheinigung' if v == 1 else 'Fiktionsbescheinigungen'} aus."
    ),
    "entry_procedures": lambda v: f"war im Jahr {YEAR} an {_said(v)} Einreiseverfahren beteiligt.",
    "integration_course_entitlements": lambda v: (
        f"erteilte im Jahr {YEAR} {_said(v)} {'Berechtigung' if v == 1 else 'Berechtigungen'} "
        "zur Teilnahme am Integrationskurs."
    ),
    "integration_course_obligations": lambda v: (
        f"erteilte im Jahr {YEAR} {_said(v)} {'Verpflichtung' if v == 1 else 'Verpflichtungen'} "
        "zur Teilnahme am Integrationskurs."
    ),
    "commitment_declarations": lambda v: (
        f"händigte im Jahr {YEAR} {_said(v)} "
        f"{'Verpflichtungserklärung' if v == 1 else 'Verpflichtungserklärungen'} aus."
    ),
    "civil_registry_inquiries": lambda v: (
        f"beantwortete im Jahr {YEAR} {_said(v)} "
        f"{'Anfrage der Standesämter' if v == 1 else 'Anfragen der Standesämter'}."
    ),
    "naturalisation_inquiries": lambda v: (
        f"beantwortete im Jahr {YEAR} {_said(v)} "
        f"{'Anfrage zur Einbürgerung' if v == 1 else 'Anfragen zur Einbürgerung'}."
    ),
}


@pytest.mark.parametrize("value", [0.0, 1.0, MANY])
@pytest.mark.parametrize("key", sorted(CLAUSES))
def test_each_count_sentence_says_its_figure_in_agreeing_german(key: str, value: float) -> None:
    summary = german_summary(_report(_figure(key, value)))

    assert summary == f"Die Ausländerbehörde {CLAUSES[key](value)}"
    _states(summary, value)


def _states(sentence: str, value: float) -> None:
    """The number in the sentence is the figure, or honestly rounded from it."""
    numbers = [
        float(n.replace(".", "").replace(",", "."))
        for n in re.findall(r"\d[\d.]*(?:,\d+)?", sentence)
        if n != str(YEAR)
    ]
    assert numbers, sentence
    said = numbers[0]
    assert said == value or abs(said - value) <= 0.05 * said, (sentence, value)


@pytest.mark.parametrize("payments", [0.0, 1.0, 317.0])
def test_the_fee_sentence_adds_up_with_the_payments_it_names(payments: float) -> None:
    amount = 29.0 * payments
    fees = _figure(
        "commitment_fees_eur",
        amount,
        "eur",
        breakdowns={
            "Buchung": {"bezahlt": amount, "erstattet": 0.0},
            FEE_PAYMENTS: {"bezahlt": payments, "erstattet": 0.0},
        },
    )
    summary = german_summary(_report(fees))

    if payments == 0:
        assert summary == f"Die Ausländerbehörde nahm im Jahr {YEAR} Gebühren von 0 Euro ein."
        return
    noun = (
        "bezahlte Verpflichtungserklärung"
        if payments == 1
        else "bezahlte Verpflichtungserklärungen"
    )
    assert summary == (
        f"Die Ausländerbehörde nahm im Jahr {YEAR} für {german_number(payments)} {noun} "
        f"Gebühren von {approximately(amount)} Euro ein."
    )
    # The amount said is the payments times the fee, honestly rounded (317 x 29 = 9.193).
    _states(summary.split("Gebühren von ")[1], amount)


@pytest.mark.parametrize(
    ("posts", "at_work", "expected"),
    [
        (0.0, 0.0, "hatte die Ausländerbehörde 0 Stellen; tatsächlich anwesend waren im "
         "Monatsdurchschnitt 0 Personen."),
        (1.0, 1.0, "hatte die Ausländerbehörde 1 Stelle; tatsächlich anwesend war im "
         "Monatsdurchschnitt 1 Person."),
        (26.0, 17.5, "hatte die Ausländerbehörde 26 Stellen; tatsächlich anwesend waren im "
         "Monatsdurchschnitt 17,5 Personen."),
        (1.0, None, "hatte die Ausländerbehörde 1 Stelle."),
        (None, 1.0, "hatte die Ausländerbehörde im Monatsdurchschnitt 1 Person tatsächlich "
         "anwesend."),
        (None, 2.5, "hatte die Ausländerbehörde im Monatsdurchschnitt 2,5 Personen "
         "tatsächlich anwesend."),
    ],
)  # fmt: skip
def test_the_press_release_opens_with_the_head_count(
    posts: float | None, at_work: float | None, expected: str
) -> None:
    report = _report(
        _figure("staff_at_work", at_work),
        _figure("staff_posts", posts),
        _figure("appointments_served", 1.0),
    )
    summary = german_summary(report)

    assert summary.startswith(f"Im Jahr {YEAR} {expected} Sie führte im Jahr {YEAR} 1 Termin")


@pytest.mark.parametrize(("deemed", "said"), [(0.0, ""), (1.0, "1 Fall"), (7.0, "7 Fällen")])
def test_consents_deemed_given_are_said_with_the_entry_procedures(deemed: float, said: str) -> None:
    summary = german_summary(
        _report(_figure("entry_procedures", 40.0), _figure("entry_consents_deemed", deemed))
    )

    if not said:
        assert "Schweigen" not in summary
    else:
        assert f"an 40 Einreiseverfahren (in {said} galt die Zustimmung durch Schweigen" in summary


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (("customers",), "ist die Zahl der Kundinnen und Kunden; diese Zahl fehlt"),
        (("digital_share",), "ist der Anteil digital eingegangener Vorgänge; diese Zahl fehlt"),
        (("appointments_served",), "sind die wahrgenommenen Termine; diese Zahl fehlt"),
        (("staff_posts",), "sind die Stellen; diese Zahl fehlt"),
        (
            ("customers", "appointments_served"),
            "sind die Zahl der Kundinnen und Kunden und die wahrgenommenen Termine; diese "
            "Zahlen fehlen",
        ),
        (
            ("customers", "digital_share", "staff_posts"),
            "sind die Zahl der Kundinnen und Kunden, der Anteil digital eingegangener Vorgänge "
            "und die Stellen; diese Zahlen fehlen",
        ),
    ],
)
def test_the_not_recorded_sentence_agrees_with_what_it_names(
    keys: tuple[str, ...], expected: str
) -> None:
    summary = german_summary(_report(*(_figure(key, None) for key in keys)))

    number = "ist" if len(keys) == 1 else "sind"
    assert summary == (
        f"Für {YEAR} nicht erfasst {expected} in dieser Bilanz und {number} nicht als null "
        "zu lesen."
    )
