"""Document-QA workloads: DocVQA/ChartQA loaders, synthetic generators and request shapes.

Loaders and generators produce :class:`DocQASample` objects for accuracy evaluation
(:mod:`lynx.eval`); :func:`make_docqa_workload` produces :class:`Request` shapes for
throughput/latency benchmarks of VLM document-QA traffic.
"""

from lynx.workloads.chartqa import load_chartqa
from lynx.workloads.dataset_io import DatasetError
from lynx.workloads.docqa_workload import ANSWER_MODES, make_docqa_workload, output_tokens, text_tokens
from lynx.workloads.docvqa import load_docvqa
from lynx.workloads.image_sizes import sample_image_size
from lynx.workloads.image_tokens import FRONTENDS, DeepSeekVL2, InternVL, KimiVL, QwenVL, VisionFrontend, get_frontend
from lynx.workloads.requests import Request, load_requests, poisson_arrivals, save_requests
from lynx.workloads.sample import DocQASample, load_samples, save_samples
from lynx.workloads.synthetic import generate_chartqa, generate_docvqa

__all__ = [
    "ANSWER_MODES",
    "FRONTENDS",
    "DatasetError",
    "DeepSeekVL2",
    "DocQASample",
    "InternVL",
    "KimiVL",
    "QwenVL",
    "Request",
    "VisionFrontend",
    "generate_chartqa",
    "generate_docvqa",
    "get_frontend",
    "load_chartqa",
    "load_docvqa",
    "load_requests",
    "load_samples",
    "make_docqa_workload",
    "output_tokens",
    "poisson_arrivals",
    "sample_image_size",
    "save_requests",
    "save_samples",
    "text_tokens",
]
