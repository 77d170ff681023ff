"""Document-QA workloads: DocVQA/ChartQA loaders and seeded synthetic generators.

Both produce :class:`DocQASample` objects for accuracy evaluation (:mod:`lynx.eval`).
"""

from lynx.workloads.chartqa import load_chartqa
from lynx.workloads.dataset_io import DatasetError
from lynx.workloads.docvqa import load_docvqa
from lynx.workloads.image_sizes import sample_image_size
from lynx.workloads.sample import DocQASample, load_samples, save_samples
from lynx.workloads.synthetic import generate_chartqa, generate_docvqa

__all__ = [
    "DatasetError",
    "DocQASample",
    "generate_chartqa",
    "generate_docvqa",
    "load_chartqa",
    "load_docvqa",
    "load_samples",
    "sample_image_size",
    "save_samples",
]
