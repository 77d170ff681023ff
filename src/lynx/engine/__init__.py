"""The inference engine: requests, scheduler, paged KV cache, model runner, sampling."""

from lynx.engine.config import EngineConfig
from lynx.engine.llm import LLM
from lynx.engine.llm_engine import LLMEngine
from lynx.engine.outputs import RequestMetrics, RequestOutput, StepStats
from lynx.engine.sampling_params import SamplingParams

__all__ = ["LLM", "EngineConfig", "LLMEngine", "RequestMetrics", "RequestOutput", "SamplingParams", "StepStats"]
