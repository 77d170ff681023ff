"""Random but realistic field values (names, companies, dates, money) for synthetic documents.

Every value is drawn from the caller's :class:`random.Random`, so a generator seeded once is
fully deterministic. Helpers that format a value also return the answer variants a human
annotator would accept *and* that occur verbatim in the rendered text (e.g. ``"$1,250.00"``
and ``"1,250.00"``), which keeps the synthetic questions extractive.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from lynx.workloads.synthetic import vocab


@dataclass(frozen=True)
class Person:
    """A person with an optional honorific and job title."""

    first: str
    last: str
    honorific: str
    title: str

    @property
    def name(self) -> str:
        """First and last name, e.g. ``"Jane Doe"``."""
        return f"{self.first} {self.last}"

    @property
    def formal(self) -> str:
        """Honorific and last name, e.g. ``"Dr. Doe"``."""
        return f"{self.honorific} {self.last}"

    def name_variants(self, with_honorific: bool = False) -> list[str]:
        """Accepted answers for this person's name as rendered (honorific optional)."""
        return [f"{self.honorific} {self.name}", self.name] if with_honorific else [self.name]


class Values:
    """Draws field values from a seeded random generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def person(self) -> Person:
        """A random person (name, honorific and job title)."""
        r = self.rng
        return Person(
            r.choice(vocab.FIRST_NAMES),
            r.choice(vocab.LAST_NAMES),
            r.choice(vocab.HONORIFICS),
            r.choice(vocab.JOB_TITLES),
        )

    def people(self, k: int) -> list[Person]:
        """``k`` people with pairwise different full names (questions must be unambiguous)."""
        out: dict[str, Person] = {}
        while len(out) < k:
            p = self.person()
            out.setdefault(p.name, p)
        return list(out.values())

    def company(self) -> str:
        """A company name such as ``"Summit Packaging Corp."``."""
        r = self.rng
        parts = [r.choice(vocab.COMPANY_ROOTS), r.choice(vocab.COMPANY_TRADES), r.choice(vocab.COMPANY_SUFFIXES)]
        return " ".join(p for p in parts if p)

    def address(self) -> tuple[str, str]:
        """(street line, city line), e.g. ``("1234 Oak Street", "Richmond, VA 23219")``."""
        r = self.rng
        street = f"{r.randint(1, 9999)} {r.choice(vocab.STREETS)} {r.choice(vocab.STREET_TYPES)}"
        city, state = r.choice(vocab.CITIES)
        return street, f"{city}, {state} {r.randint(10000, 99999)}"

    def date(self, year_range: tuple[int, int] = (1965, 2024)) -> str:
        """A date in one of the formats seen on business documents."""
        r = self.rng
        y, m, d = r.randint(*year_range), r.randint(1, 12), r.randint(1, 28)
        month = vocab.MONTHS[m - 1]
        style = r.randrange(5)
        if style == 0:
            return f"{month} {d}, {y}"
        if style == 1:
            return f"{m:02d}/{d:02d}/{y}"
        if style == 2:
            return f"{d} {month} {y}"
        if style == 3:
            return f"{m}/{d}/{y % 100:02d}"
        return f"{month[:3]}. {d}, {y}"

    def phone(self) -> str:
        """A North-American phone number in one of three layouts."""
        r = self.rng
        a, b, c = r.randint(201, 989), r.randint(200, 999), r.randint(0, 9999)
        return r.choice((f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"{a}.{b}.{c:04d}"))

    def email(self, person: Person, company: str) -> str:
        """A plausible work e-mail address for ``person`` at ``company``."""
        domain = "".join(ch for ch in company.split()[0].lower() if ch.isalnum()) or "mail"
        local = self.rng.choice((f"{person.first}.{person.last}", f"{person.first[0]}{person.last}", person.last))
        return f"{''.join(ch for ch in local.lower() if ch.isalnum() or ch == '.')}@{domain}.com"

    def code(self, prefix: str, digits: int = 5) -> str:
        """An identifier such as ``"INV-20391"``."""
        return f"{prefix}{self.rng.randint(10 ** (digits - 1), 10**digits - 1)}"

    def amount(self, low: float, high: float) -> float:
        """A money amount in cents precision between ``low`` and ``high``."""
        return round(self.rng.uniform(low, high), 2)


def money(value: float, symbol: bool = True) -> str:
    """Format ``value`` as ``"$1,250.00"`` (or ``"1,250.00"`` without the symbol)."""
    return f"{'$' if symbol else ''}{value:,.2f}"


def money_variants(value: float, symbol: bool = True) -> list[str]:
    """Answer variants of a rendered amount that all occur in ``money(value, symbol)``."""
    plain = money(value, symbol=False)
    return [money(value), plain] if symbol else [plain]


def code_variants(code: str) -> list[str]:
    """``"INV-20391"`` -> ``["INV-20391", "20391"]`` (annotators often drop the prefix)."""
    head, sep, tail = code.rpartition("-")
    return [code, tail] if sep and head and tail else [code]
