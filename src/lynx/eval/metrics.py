"""Answer metrics of the document-QA benchmarks, following their official definitions.

* :func:`anls` - DocVQA's Average Normalized Levenshtein Similarity, as computed by the
  official RRC evaluation script (and its copy in lmms-eval): both strings are stripped,
  lower-cased and have internal whitespace collapsed; the normalised distance is
  ``levenshtein / max(len)``; the question score is ``1 - min(distance over gold answers)``
  and it is set to 0 when that similarity is *below* 0.5. A normalised distance of exactly
  0.5 therefore scores 0.5 (the script tests ``similarity < 0.5``; the paper's Eq. 1 would
  give 0 there). Lengths are taken of the upper-cased strings, as the script does (this
  only differs from the plain length for characters such as ``"ß"``).
* :func:`relaxed_accuracy` - ChartQA's relaxed correctness (pix2struct/lmms-eval): if both
  strings parse with Python ``float()`` - after turning a trailing ``%`` into a division by
  100 - and the target is non-zero, correct iff ``|pred - target| / |target| <= 0.05``;
  otherwise case-insensitive string equality. Consequences kept on purpose: ``"1,000"``
  does not parse (commas are not stripped) so it only matches the identical string; a
  zero target needs the identical string (``"0"`` vs ``"0.0"`` is wrong); ``"50%"`` equals
  ``"0.5"`` but not ``"50"``; ``"42."`` parses as 42. The one addition is stripping
  surrounding whitespace from both strings before comparing.
* :func:`exact_match` - 1 iff the prediction equals a gold answer after the same
  normalisation as ANLS (strip, collapse whitespace, lower-case), so EM = 1 implies ANLS = 1.

All three take one prediction and one gold string or a list of them (best score wins) and
return a float in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

ANLS_THRESHOLD = 0.5
RELAXED_TOLERANCE = 0.05


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions all cost 1)."""
    if len(a) < len(b):
        a, b = b, a  # keep the DP row as short as possible
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def normalize_answer(text: str) -> str:
    """Lower-case, strip and collapse internal whitespace (the DocVQA normalisation)."""
    return " ".join(text.strip().lower().split())


def anls(prediction: str, answers: str | Sequence[str], threshold: float = ANLS_THRESHOLD) -> float:
    """DocVQA ANLS of one prediction against its gold answers (see module docstring)."""
    golds = _golds(answers)
    pred = normalize_answer(prediction)
    best_distance = 1.0
    for gold in map(normalize_answer, golds):
        length = max(len(gold.upper()), len(pred.upper()))
        distance = 0.0 if length == 0 else levenshtein(gold, pred) / length
        best_distance = min(best_distance, distance)
    similarity = 1.0 - best_distance
    return 0.0 if similarity < threshold else similarity


def relaxed_accuracy(
    prediction: str, target: str | Sequence[str], max_relative_change: float = RELAXED_TOLERANCE
) -> float:
    """ChartQA relaxed accuracy: 1.0 or 0.0, best over targets (see module docstring)."""
    pred = prediction.strip()
    pred_value = _to_float(pred)
    for gold in (t.strip() for t in _golds(target)):
        gold_value = _to_float(gold)
        # As in pix2struct, a zero (falsy) target falls through to string comparison.
        if pred_value is not None and gold_value:
            if abs(pred_value - gold_value) / abs(gold_value) <= max_relative_change:
                return 1.0
        elif pred.lower() == gold.lower():
            return 1.0
    return 0.0


def exact_match(prediction: str, answers: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer, else 0.0."""
    pred = normalize_answer(prediction)
    return 1.0 if any(pred == normalize_answer(g) for g in _golds(answers)) else 0.0


def _to_float(text: str) -> float | None:
    try:
        if text.endswith("%"):
            return float(text.rstrip("%")) / 100.0
        return float(text)
    except ValueError:
        return None


def _golds(answers: str | Sequence[str]) -> Sequence[str]:
    golds = [answers] if isinstance(answers, str) else answers
    if len(golds) == 0:
        raise ValueError("no gold answers to score against")
    return golds
