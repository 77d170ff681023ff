"""Model configuration: one normalised view of a Hugging Face ``config.json``.

Hugging Face configs spell the same fact in different ways across architectures and
library versions (``num_experts`` vs ``num_local_experts``, ``rope_theta`` vs
``rope_parameters``, derived ``layer_types``). :func:`parse_model_config` reads them all
into :class:`ModelConfig`, so the layers never look at raw dictionaries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lynx.errors import CheckpointError, UnsupportedArchitectureError


@dataclass(frozen=True, slots=True)
class RopeConfig:
    """Rotary embedding settings (``rope_type`` as in transformers' ``rope_parameters``)."""

    theta: float = 10000.0
    rope_type: str = "default"  # default | linear | llama3 | yarn
    factor: float = 1.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int | None = None
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    attention_factor: float | None = None
    mscale: float | None = None
    mscale_all_dim: float | None = None
    truncate: bool = True
    partial_rotary_factor: float = 1.0


@dataclass(frozen=True, slots=True)
class MoEConfig:
    """Routed-expert settings shared by every MoE layer of a model."""

    num_experts: int
    top_k: int
    intermediate_size: int  # FFN width of one routed expert
    renormalize: bool  # renormalise the top-k weights to sum 1 (Qwen3-MoE, Mixtral)
    scoring: str = "softmax"
    shared_expert_intermediate_size: int = 0  # 0: no shared expert (Qwen2-MoE has one)


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Everything the layers need, independent of the checkpoint's spelling."""

    architecture: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int  # dense MLP width (dense layers of MoE models too)
    rms_norm_eps: float
    max_position_embeddings: int
    rope: RopeConfig
    tie_word_embeddings: bool
    qkv_bias: bool
    o_bias: bool
    mlp_bias: bool
    qk_norm: str  # "none" | "head" (per-head RMSNorm, Qwen3) | "full" (over all heads, OLMoE)
    clip_qkv: float | None
    sliding_window: int | None
    layer_types: tuple[str, ...]  # per layer: "full_attention" | "sliding_attention"
    moe: MoEConfig | None
    moe_layers: tuple[bool, ...]  # per layer: routed-expert MLP (True) or dense MLP
    hidden_act: str
    torch_dtype: str | None
    eos_token_ids: tuple[int, ...]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def is_moe(self) -> bool:
        return self.moe is not None and any(self.moe_layers)

    @property
    def num_moe_layers(self) -> int:
        return sum(self.moe_layers)

    def param_counts(self) -> tuple[int, int]:
        """(total, active per token) parameter counts, embeddings and head included."""
        h, d = self.hidden_size, self.head_dim
        attn = h * d * (self.num_heads + 2 * self.num_kv_heads) + self.num_heads * d * h
        embed = self.vocab_size * h * (1 if self.tie_word_embeddings else 2)
        dense_mlp = 3 * h * self.intermediate_size
        total = active = embed
        for is_moe in self.moe_layers:
            total += attn
            active += attn
            if is_moe and self.moe is not None:
                expert = 3 * h * self.moe.intermediate_size
                shared = 3 * h * self.moe.shared_expert_intermediate_size
                router = h * self.moe.num_experts + (h if shared else 0)
                total += self.moe.num_experts * expert + shared + router
                active += self.moe.top_k * expert + shared + router
            else:
                total += dense_mlp
                active += dense_mlp
        return total, active


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} must hold a JSON object")
    return data


def load_config_dict(model_dir: Path) -> dict[str, Any]:
    """Read ``config.json`` of a checkpoint directory with a clear error if it is absent."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise CheckpointError(f"model directory {model_dir} does not exist")
    path = model_dir / "config.json"
    if not path.is_file():
        raise CheckpointError(
            f"{model_dir} is not a Hugging Face checkpoint: it has no config.json"
        )
    return _read_json(path)


def _rope(cfg: dict[str, Any]) -> RopeConfig:
    # transformers >= 5 writes `rope_parameters` (with rope_theta inside); older configs
    # (and the Hub's) have `rope_theta` plus an optional `rope_scaling` dict.
    params = dict(cfg.get("rope_parameters") or {})
    scaling = cfg.get("rope_scaling") or {}
    params = {**scaling, **params}
    theta = params.get("rope_theta", cfg.get("rope_theta", 10000.0))
    rope_type = params.get("rope_type", params.get("type", "default")) or "default"
    if rope_type not in ("default", "linear", "llama3", "yarn"):
        raise UnsupportedArchitectureError(
            f"rope type {rope_type!r} is not supported (supported: default, linear, llama3, yarn)"
        )
    def opt(key: str, default: Any) -> Any:
        v = params.get(key)
        return default if v is None else v

    return RopeConfig(
        theta=float(theta),
        rope_type=rope_type,
        factor=float(opt("factor", 1.0)),
        low_freq_factor=float(opt("low_freq_factor", 1.0)),
        high_freq_factor=float(opt("high_freq_factor", 4.0)),
        original_max_position_embeddings=params.get("original_max_position_embeddings"),
        beta_fast=float(opt("beta_fast", 32.0)),
        beta_slow=float(opt("beta_slow", 1.0)),
        attention_factor=params.get("attention_factor"),
        mscale=params.get("mscale"),
        mscale_all_dim=params.get("mscale_all_dim"),
        truncate=bool(opt("truncate", True)),
        partial_rotary_factor=float(cfg.get("partial_rotary_factor", opt("partial_rotary_factor", 1.0))),
    )


def _eos_ids(cfg: dict[str, Any]) -> tuple[int, ...]:
    eos = cfg.get("eos_token_id")
    if eos is None:
        return ()
    return tuple(eos) if isinstance(eos, list) else (int(eos),)


def _require(cfg: dict[str, Any], key: str, arch: str) -> Any:
    if key not in cfg or cfg[key] is None:
        raise CheckpointError(f"config.json of a {arch} checkpoint lacks required key {key!r}")
    return cfg[key]


def parse_model_config(cfg: dict[str, Any]) -> ModelConfig:
    """Normalise a raw ``config.json`` dictionary; the architecture decides the details."""
    from lynx.models.registry import get_arch_spec  # late: registry imports model modules

    archs = cfg.get("architectures") or []
    if not archs:
        raise CheckpointError("config.json has no 'architectures' entry")
    spec = get_arch_spec(archs[0])
    arch = spec.name
    hidden = int(_require(cfg, "hidden_size", arch))
    heads = int(_require(cfg, "num_attention_heads", arch))
    layers = int(_require(cfg, "num_hidden_layers", arch))
    kv_heads = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    # transformers >= 5 writes the derived per-layer attention types; older configs don't.
    sliding = list(cfg.get("layer_types") or spec.layer_types(cfg, layers))
    if len(sliding) != layers:
        raise CheckpointError(f"config.json layer_types has {len(sliding)} entries for {layers} layers")
    window = cfg.get("sliding_window") if any(t == "sliding_attention" for t in sliding) else None
    moe, moe_layers = spec.moe_config(cfg, layers)
    bias = bool(cfg.get("attention_bias", False))
    return ModelConfig(
        architecture=arch,
        vocab_size=int(_require(cfg, "vocab_size", arch)),
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate_size=int(cfg.get("intermediate_size") or 0),
        rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
        max_position_embeddings=int(cfg.get("max_position_embeddings", 4096)),
        rope=_rope(cfg),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        qkv_bias=bool(cfg.get("qkv_bias", spec.qkv_bias)) if spec.qkv_bias is not None else bias,
        o_bias=bias if spec.o_bias_follows_attention_bias else False,
        mlp_bias=bool(cfg.get("mlp_bias", False)),
        qk_norm=spec.qk_norm,
        clip_qkv=cfg.get("clip_qkv"),
        sliding_window=int(window) if window else None,
        layer_types=tuple(sliding),
        moe=moe,
        moe_layers=tuple(moe_layers),
        hidden_act=str(cfg.get("hidden_act", "silu")),
        torch_dtype=cfg.get("torch_dtype") or cfg.get("dtype"),
        eos_token_ids=_eos_ids(cfg),
        raw=cfg,
    )
