"""Model configs, the shared decoder and the checkpoint loader."""

from lynx.models.config import ModelConfig, MoEConfig, load_config_dict, parse_model_config
from lynx.models.loader import load_model
from lynx.models.registry import ARCHITECTURES, get_arch_spec

__all__ = [
    "ARCHITECTURES",
    "ModelConfig",
    "MoEConfig",
    "get_arch_spec",
    "load_config_dict",
    "load_model",
    "parse_model_config",
]
