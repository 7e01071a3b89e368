"""Fictitious people and document numbers for generated offices (demo, simulator).

Names come from short lists per nationality, passport, card and form numbers have
roughly the shape of the real documents; no real person is meant. Every function draws
from the ``random.Random`` it is given, so a seeded generator gives the same people.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Final, TypeVar

T = TypeVar("T")

NAMES: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "SYR": (
        ("Ahmad", "Rami", "Yasmin", "Lina", "Omar", "Hala", "Karim", "Nour", "Samir", "Rana"),
        ("Haddad", "Khoury", "Al-Masri", "Darwish", "Hamdan", "Nasser", "Saleh", "Aziz"),
    ),
    "UKR": (
        ("Olena", "Oksana", "Andrii", "Dmytro", "Iryna", "Mykola", "Tetiana", "Serhii", "Bohdan"),
        ("Kovalenko", "Shevchenko", "Bondarenko", "Melnyk", "Tkachenko", "Oliinyk", "Marchenko"),
    ),
    "TUR": (
        ("Emre", "Ayşe", "Mehmet", "Elif", "Mustafa", "Zeynep", "Burak", "Fatma", "Can", "Selin"),
        ("Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Aydın", "Öztürk", "Arslan"),
    ),
    "AFG": (
        ("Farid", "Zahra", "Mariam", "Hamid", "Soraya", "Nasir", "Fereshta", "Javid"),
        ("Ahmadi", "Hakimi", "Rahimi", "Karimi", "Noori", "Sultani", "Haidari"),
    ),
    "IND": (
        ("Arjun", "Priya", "Rahul", "Ananya", "Vikram", "Sneha", "Karthik", "Divya", "Rohan"),
        ("Sharma", "Patel", "Iyer", "Reddy", "Nair", "Gupta", "Menon", "Rao"),
    ),
    "CHN": (
        ("Wei", "Jing", "Hao", "Xinyi", "Lei", "Mei", "Yu", "Ming", "Jun"),
        ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang"),
    ),
    "USA": (
        ("Emily", "Michael", "Sarah", "Jason", "Ashley", "Daniel", "Megan", "Tyler"),
        ("Miller", "Johnson", "Anderson", "Thompson", "Garcia", "Walker", "Harris", "Clark"),
    ),
    "BRA": (
        ("Ana", "Lucas", "Beatriz", "Gabriel", "Juliana", "Rafael", "Camila", "Thiago"),
        ("Silva", "Santos", "Oliveira", "Souza", "Pereira", "Costa", "Almeida", "Ferreira"),
    ),
    "NGA": (
        ("Chinedu", "Ngozi", "Emeka", "Adaeze", "Tunde", "Funmilayo", "Ibrahim", "Aisha"),
        ("Okafor", "Adeyemi", "Nwosu", "Balogun", "Eze", "Okonkwo", "Bello", "Adebayo"),
    ),
    "IRN": (
        ("Reza", "Maryam", "Ali", "Shirin", "Kaveh", "Parisa", "Dariush", "Leila"),
        ("Hosseini", "Tehrani", "Rezaei", "Moradi", "Jafari", "Karimzadeh", "Sadeghi"),
    ),
    "XXA": (
        ("Hussein", "Layla", "Yusuf", "Amira", "Khaled", "Dalia", "Bilal", "Salma"),
        ("Khalil", "Mansour", "Ibrahim", "Hassan", "Awad", "Qasem", "Sabbagh"),
    ),
}

# Passport numbers: a letter prefix and a count of digits per issuing state, roughly
# the shape of the real documents; XXA holds a German travel document for stateless persons.
PASSPORT_SHAPES: Final[dict[str, tuple[str, int]]] = {
    "SYR": ("N", 8),
    "UKR": ("F?", 6),
    "TUR": ("U", 8),
    "AFG": ("P", 8),
    "IND": ("?", 7),
    "CHN": ("E", 8),
    "USA": ("", 9),
    "BRA": ("F?", 6),
    "NGA": ("A", 8),
    "IRN": ("K", 8),
    "XXA": ("T", 8),
}

STREETS: Final = (
    "Musterstraße",
    "Beispielweg",
    "Am Probepark",
    "Lindenallee",
    "Bahnhofstraße",
    "Schillerplatz",
    "Goetheweg",
    "Kastanienring",
)
_LETTERS: Final = "ABCDEFGHJKLMNPRSTUVWXYZ"
_CARD_CHARACTERS: Final = "CFGHJKLMNPRTVWXYZ0123456789"


def digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(count))


def passport_number(rng: random.Random, nationality: str) -> str:
    prefix, count = PASSPORT_SHAPES[nationality]
    prefix = "".join(rng.choice(_LETTERS) if ch == "?" else ch for ch in prefix)
    number = prefix + digits(rng, count)
    return number if len(number) >= 5 else number + digits(rng, 5 - len(number))


def eat_card_number(rng: random.Random) -> str:
    return "Y" + "".join(rng.choice(_CARD_CHARACTERS) for _ in range(8))


def paper_number(rng: random.Random, prefix: str) -> str:
    """Numbers of Duldung, Gestattung and carrier-sheet forms."""
    return prefix + digits(rng, 8)


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def until(valid_from: date, months: int) -> date:
    """The last valid day of a document valid for ``months`` from ``valid_from``."""
    return add_months(valid_from, months) - timedelta(days=1)


def weighted(rng: random.Random, options: Sequence[tuple[T, int]]) -> T:
    """One of the options, drawn by their weights."""
    values = [value for value, _weight in options]
    weights = [weight for _value, weight in options]
    return rng.choices(values, weights=weights)[0]
