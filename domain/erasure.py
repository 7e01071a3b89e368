"""Erasure of a person's data (crypto-shredding): the legal grounds it may rest on.

Erasure destroys the key of the person's case file (and of the records linked to it);
the events stay, with their non-personal facts, so statistics and the audit chain still
add up. The grounds are codes, as legal bases elsewhere; the labels are German, for
people.
"""

from __future__ import annotations

from typing import Final

ERASURE_GROUNDS: Final = {
    "aufenthg-91": "§ 91 AufenthG (Speicherung und Löschung personenbezogener Daten)",
    "aufenthv-68": "§ 68 AufenthV (Löschung der Daten in den Ausländerdateien)",
    "dsgvo-17": "Art. 17 DSGVO (Recht auf Löschung)",
}
"""Legal grounds an erasure may name, by code."""
