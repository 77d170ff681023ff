"""Document-QA workloads: DocVQA/ChartQA loaders producing :class:`DocQASample` objects."""

from lynx.workloads.chartqa import load_chartqa
from lynx.workloads.dataset_io import DatasetError
from lynx.workloads.docvqa import load_docvqa
from lynx.workloads.sample import DocQASample, load_samples, save_samples

__all__ = ["DatasetError", "DocQASample", "load_chartqa", "load_docvqa", "load_samples", "save_samples"]
