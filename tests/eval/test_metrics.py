"""Hand-checked cases of the benchmark metrics (ANLS, relaxed accuracy, exact match)."""

from __future__ import annotations

import pytest

from lynx.eval.metrics import anls, exact_match, levenshtein, normalize_answer, relaxed_accuracy


@pytest.mark.parametrize(
    ("a", "b", "dist"),
    [("kitten", "sitting", 3), ("flaw", "lawn", 2), ("", "abc", 3), ("abc", "", 3), ("", "", 0), ("same", "same", 0)],
)
def test_levenshtein(a: str, b: str, dist: int) -> None:
    assert levenshtein(a, b) == dist
    assert levenshtein(b, a) == dist


def test_normalize_answer_lowercases_strips_and_collapses_whitespace() -> None:
    assert normalize_answer("  Dear \t Dr.\n  LOBO ") == "dear dr. lobo"


class TestANLS:
    def test_exact_and_case_whitespace_insensitive(self) -> None:
        assert anls("Denver Broncos", ["Denver Broncos", "Denver R. Broncos"]) == 1.0
        assert anls("  denver   BRONCOS ", "Denver Broncos") == 1.0
        assert anls("Dear dr. Lobo", ["Dear Dr. Lobo", "Dr. Lobo"]) == 1.0

    def test_one_edit_in_eight_characters(self) -> None:
        # "12/15/89" vs "12/15/88": distance 1, length 8.
        assert anls("12/15/89", ["12/15/88"]) == pytest.approx(1 - 1 / 8)

    def test_best_over_gold_answers(self) -> None:
        assert anls("abc", ["xyz", "abd"]) == pytest.approx(1 - 1 / 3)
        assert anls("abd", ["abd", "xyz"]) == 1.0

    def test_threshold_exactly_half_keeps_half(self) -> None:
        # Normalised distance exactly 0.5 -> similarity 0.5, which the official script keeps
        # (it zeroes only similarities strictly below 0.5).
        assert anls("abcd", "abxy") == 0.5

    def test_below_threshold_is_zero(self) -> None:
        assert anls("abcde", "abxyz") == 0.0  # distance 3/5 -> similarity 0.4
        assert anls("abcd", "axyz") == 0.0  # 3/4 -> 0.25
        assert anls("abcde", "abcyz") == pytest.approx(0.6)  # 2/5 -> 0.6 is kept

    def test_empty_strings(self) -> None:
        assert anls("", "abc") == 0.0
        assert anls("abc", "") == 0.0
        assert anls("", "") == 1.0  # both empty: distance defined as 0
        assert anls("   ", [""]) == 1.0  # whitespace-only normalises to empty

    def test_lengths_are_taken_upper_cased_like_the_official_script(self) -> None:
        # "ß".upper() == "SS": distance 1 over length 2 -> 0.5 (plain lengths would give 0).
        assert anls("ß", "s") == 0.5

    def test_custom_threshold(self) -> None:
        assert anls("abcde", "abxyz", threshold=0.3) == pytest.approx(0.4)

    def test_no_gold_answers_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="no gold answers"):
            anls("x", [])


class TestRelaxedAccuracy:
    @pytest.mark.parametrize(
        ("pred", "target", "expected"),
        [
            ("12", "12", 1.0),
            ("12.5", "12", 1.0),  # 4.2 % off
            ("12.7", "12", 0.0),  # 5.8 % off
            ("105", "100", 1.0),  # exactly 5 %: inclusive
            ("95", "100", 1.0),
            ("105.1", "100", 0.0),
            ("-5", "-5.2", 1.0),  # relative to |target|
            ("42.", "42", 1.0),  # float() accepts a trailing period
            ("1e2", "100", 1.0),  # ... and exponents
        ],
    )
    def test_numeric_tolerance(self, pred: str, target: str, expected: float) -> None:
        assert relaxed_accuracy(pred, target) == expected

    @pytest.mark.parametrize(
        ("pred", "target", "expected"),
        [
            ("50%", "0.5", 1.0),  # a trailing % divides by 100
            ("0.5", "50%", 1.0),
            ("50%", "50%", 1.0),
            ("51%", "50%", 1.0),  # 0.51 vs 0.5: 2 %
            ("50%", "50", 0.0),  # 0.5 vs 50
            ("50", "50%", 0.0),
        ],
    )
    def test_percent(self, pred: str, target: str, expected: float) -> None:
        assert relaxed_accuracy(pred, target) == expected

    @pytest.mark.parametrize(
        ("pred", "target", "expected"),
        [("0", "0", 1.0), ("0.0", "0", 0.0), ("0.01", "0", 0.0), ("0%", "0", 0.0), ("0", "0.0", 0.0)],
    )
    def test_zero_target_needs_the_identical_string(self, pred: str, target: str, expected: float) -> None:
        assert relaxed_accuracy(pred, target) == expected

    @pytest.mark.parametrize(
        ("pred", "target", "expected"),
        [("1,000", "1000", 0.0), ("1000", "1,000", 0.0), ("1,000", "1,000", 1.0), ("1,020", "1,000", 0.0)],
    )
    def test_commas_are_not_parsed(self, pred: str, target: str, expected: float) -> None:
        assert relaxed_accuracy(pred, target) == expected

    @pytest.mark.parametrize(
        ("pred", "target", "expected"),
        [
            ("Yes", "yes", 1.0),
            (" Yes ", "Yes", 1.0),  # surrounding whitespace is stripped
            ("Yes.", "Yes", 0.0),  # other punctuation is not
            ("United States", "united states", 1.0),
            ("12", "Twelve", 0.0),
            ("", "12", 0.0),
            ("", "", 1.0),
        ],
    )
    def test_strings(self, pred: str, target: str, expected: float) -> None:
        assert relaxed_accuracy(pred, target) == expected

    def test_best_over_targets(self) -> None:
        assert relaxed_accuracy("7", ["5", "7.2"]) == 1.0
        assert relaxed_accuracy("7", ["5", "8"]) == 0.0

    def test_custom_tolerance(self) -> None:
        assert relaxed_accuracy("11", "10", max_relative_change=0.1) == 1.0


class TestExactMatch:
    def test_normalised_equality(self) -> None:
        assert exact_match("Denver  broncos ", "denver broncos") == 1.0
        assert exact_match("Denver", ["Denver Broncos"]) == 0.0
        assert exact_match("b", ["a", "B"]) == 1.0

    def test_exact_match_implies_full_anls(self) -> None:
        for pred, gold in [("A  b", "a B"), ("$1,250.00", "$1,250.00")]:
            assert exact_match(pred, gold) == 1.0 and anls(pred, gold) == 1.0
