"""Seeded synthetic DocVQA- and ChartQA-style data (also meant as training data)."""

from lynx.workloads.synthetic.chartqa_generator import QUESTION_KINDS, generate_chartqa
from lynx.workloads.synthetic.docvqa_generator import DOCUMENT_KINDS, generate_docvqa

__all__ = ["DOCUMENT_KINDS", "QUESTION_KINDS", "generate_chartqa", "generate_docvqa"]
