"""Lynx: batch-aware expert selection for fast batched decoding of MoE language models."""

from lynx.engine import LLM, EngineConfig, LLMEngine, RequestOutput, SamplingParams
from lynx.errors import LynxError

__version__ = "0.1.0"
__all__ = ["LLM", "EngineConfig", "LLMEngine", "LynxError", "RequestOutput", "SamplingParams", "__version__"]
