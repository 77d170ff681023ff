"""Synthetic chart data tables (categories x series), rendered like ChartQA's CSV tables."""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass

from lynx.workloads.synthetic import vocab

COUNTRIES = (
    "United States",
    "China",
    "Japan",
    "Germany",
    "India",
    "United Kingdom",
    "France",
    "Italy",
    "Brazil",
    "Canada",
    "Russia",
    "South Korea",
    "Australia",
    "Spain",
    "Mexico",
    "Indonesia",
    "Netherlands",
    "Saudi Arabia",
    "Turkey",
    "Switzerland",
    "Poland",
    "Sweden",
    "Belgium",
    "Argentina",
    "Norway",
    "Austria",
    "Nigeria",
    "South Africa",
    "Egypt",
    "Vietnam",
    "Chile",
)
AGE_SCHEMES = (
    ("18-29", "30-49", "50-64", "65+"),
    ("Under 18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"),
    ("16-24", "25-39", "40-59", "60+"),
)
BRANDS = (
    "Apple",
    "Samsung",
    "Xiaomi",
    "Huawei",
    "Oppo",
    "Vivo",
    "Nokia",
    "Sony",
    "LG",
    "Motorola",
    "Toyota",
    "Volkswagen",
    "Ford",
    "Honda",
    "Hyundai",
    "BMW",
    "Nestle",
    "Unilever",
    "Adidas",
    "Nike",
    "Puma",
    "Zara",
    "H&M",
    "Netflix",
    "Spotify",
    "Amazon",
    "Walmart",
    "Target",
    "Costco",
)
ISSUES = (
    "Economy",
    "Health care",
    "Education",
    "Immigration",
    "Climate change",
    "Crime",
    "Taxes",
    "Foreign policy",
    "Gun policy",
    "Jobs",
    "Housing",
    "Energy",
    "Social Security",
    "Terrorism",
)


@dataclass(frozen=True)
class _Theme:
    """How to draw one family of charts.

    ``pool`` is ``None`` for consecutive years; ``ordered`` pools are lists of schemes from
    which a contiguous run is taken in order (age brackets, months); other pools are sampled.
    """

    header: str
    pool: tuple[str, ...] | tuple[tuple[str, ...], ...] | None
    ordered: bool
    series: tuple[tuple[str, ...], ...]
    value_range: tuple[float, float]
    decimals: tuple[int, ...]
    noun: str


_THEMES = (
    _Theme(
        "Year",
        None,
        False,
        (
            ("Revenue in million U.S. dollars",),
            ("Sales in billion euros",),
            ("Number of users in millions",),
            ("Exports", "Imports"),
            ("Online", "In-store"),
        ),
        (5.0, 5000.0),
        (0, 1),
        "year",
    ),
    _Theme(
        "Country",
        COUNTRIES,
        False,
        (("Share of respondents",), ("2019", "2020"), ("Men", "Women"), ("GDP growth rate",)),
        (1.0, 95.0),
        (0, 1),
        "country",
    ),
    _Theme(
        "Age group",
        AGE_SCHEMES,
        True,
        (("Male", "Female"), ("Share of respondents",), ("Democrats", "Republicans"), ("Yes", "No", "Don't know")),
        (1.0, 90.0),
        (0,),
        "age group",
    ),
    _Theme(
        "Brand",
        BRANDS,
        False,
        (("Market share",), ("Q1", "Q2"), ("Brand value in billion U.S. dollars",)),
        (1.0, 60.0),
        (1, 2),
        "brand",
    ),
    _Theme(
        "Response",
        ISSUES,
        False,
        (
            ("Agree", "Disagree"),
            ("Very important", "Somewhat important"),
            ("Share of respondents",),
            ("Total", "Rep/Lean Rep", "Dem/Lean Dem"),
        ),
        (1.0, 95.0),
        (0,),
        "issue",
    ),
    _Theme(
        "Month",
        (vocab.MONTHS,),
        True,
        (("Number of visitors in thousands",), ("Average price in U.S. dollars",), ("2021", "2022")),
        (10.0, 900.0),
        (1, 2),
        "month",
    ),
    _Theme(
        "City",
        tuple(c for c, _ in vocab.CITIES),
        False,
        (("Population in thousands",), ("Median rent in U.S. dollars",)),
        (100.0, 9000.0),
        (0,),
        "city",
    ),
)


@dataclass(frozen=True)
class ChartTable:
    """A chart's data: ``values[i][j]`` is category ``labels[i]`` in series ``series[j]``."""

    label_header: str
    labels: tuple[str, ...]
    series: tuple[str, ...]
    values: tuple[tuple[float, ...], ...]
    decimals: int
    noun: str

    def cell(self, row: int, col: int) -> str:
        """The cell as written in the CSV (and accepted as the answer)."""
        return format_number(self.values[row][col], self.decimals)

    def to_csv(self) -> str:
        """The table as CSV text: a header row, then one row per category."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow((self.label_header, *self.series))
        for i, label in enumerate(self.labels):
            writer.writerow((label, *(self.cell(i, j) for j in range(len(self.series)))))
        return out.getvalue().rstrip("\n")


def format_number(value: float, decimals: int) -> str:
    """Round to ``decimals`` places and drop trailing zeros (``12.50`` -> ``"12.5"``)."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def make_table(rng: random.Random) -> ChartTable:
    """Draw a table from one of the themes, with all cells distinct after rounding.

    Distinct cells keep every extremum, comparison and difference question unambiguous.
    """
    theme = rng.choice(_THEMES)
    n = rng.randint(3, 10)
    if theme.pool is None:
        start = rng.randint(1990, 2024 - n)
        labels = tuple(str(start + i) for i in range(n))
    elif theme.ordered:
        scheme = rng.choice(theme.pool)
        n = min(n, len(scheme))
        start = rng.randint(0, len(scheme) - n)
        labels = tuple(scheme[start : start + n])
    else:
        labels = tuple(rng.sample(theme.pool, min(n, len(theme.pool))))
    series_choices, (lo, hi), decimal_choices = theme.series, theme.value_range, theme.decimals
    series = rng.choice(series_choices)
    decimals = rng.choice(decimal_choices)
    seen: set[float] = set()
    rows = []
    for _ in labels:
        row = []
        for _ in series:
            value = round(rng.uniform(lo, hi), decimals)
            while value in seen:
                value = round(rng.uniform(lo, hi), decimals)
            seen.add(value)
            row.append(value)
        rows.append(tuple(row))
    header = theme.header if rng.random() < 0.5 else "Characteristic"
    return ChartTable(header, labels, series, tuple(rows), decimals, theme.noun)
