"""Prompt template and answer post-processing of the document-QA evaluation.

Kept in one place so the evaluation, the synthetic training data and any future serving
benchmark build exactly the same text.
"""

from __future__ import annotations

from lynx.workloads.sample import DocQASample

#: lmms-eval's post-prompt for DocVQA and ChartQA.
INSTRUCTION = "Answer the question using a single word or phrase."


def build_prompt(sample: DocQASample) -> str:
    """``context + "\\n" + question + "\\n" + INSTRUCTION`` (no context line when absent)."""
    parts = [sample.context] if sample.context else []
    parts += [sample.question, INSTRUCTION]
    return "\n".join(parts)


def postprocess(text: str) -> str:
    """The model's answer: the first line of the stripped output, itself stripped.

    Models often continue after the answer (an explanation, a new question); the short-
    answer instruction makes the first line the answer.
    """
    return text.strip().split("\n", 1)[0].strip()
