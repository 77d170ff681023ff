"""Build tiny, real Hugging Face checkpoints with transformers' own classes.

``build_tiny_checkpoint("Qwen3MoeForCausalLM", tmp_path)`` instantiates the transformers
model from a tiny config (:mod:`lynx.testing.configs`), re-initialises its weights so the
random model is decisive (:mod:`lynx.testing.init`), and writes it with
``save_pretrained`` together with the test tokenizer (:mod:`lynx.testing.tokenizer`) and
a ``generation_config.json``. The result is exactly what transformers writes for that
architecture, so it tests a loader against the real on-disk format.

What transformers 5.24 writes (checked with these builders; the loader must read it)
---------------------------------------------------------------------------------------
Experts are fused 3-D parameters *in memory* (``mlp.experts.gate_up_proj [E, 2I, H]``,
``mlp.experts.down_proj [E, H, I]``), but ``save_pretrained`` converts them back to the
legacy per-expert keys, so files look like Hub checkpoints. Per layer ``l``, expert ``e``
(shapes ``[out, in]``; H hidden, I expert width, E experts):

* Qwen3MoeForCausalLM, OlmoeForCausalLM, Qwen2MoeForCausalLM:
  ``model.layers.{l}.mlp.experts.{e}.gate_proj.weight [I, H]``, ``...up_proj.weight [I, H]``,
  ``...down_proj.weight [H, I]``; router ``model.layers.{l}.mlp.gate.weight [E, H]``.
  Dense layers of MoE models (``mlp_only_layers`` / ``decoder_sparse_step``) have
  ``model.layers.{l}.mlp.{gate,up,down}_proj.weight`` with ``intermediate_size``.
  Qwen2-MoE adds ``mlp.shared_expert.{gate,up,down}_proj.weight`` and
  ``mlp.shared_expert_gate.weight [1, H]`` (sigmoid gate on the shared expert).
* MixtralForCausalLM: ``model.layers.{l}.block_sparse_moe.experts.{e}.w1.weight [I, H]``
  (gate), ``.w3.weight [I, H]`` (up), ``.w2.weight [H, I]`` (down); router
  ``model.layers.{l}.block_sparse_moe.gate.weight [E, H]``.
* Attention: ``self_attn.{q,k,v,o}_proj.weight``; ``.bias`` on q/k/v for Qwen2 and
  Qwen2-MoE (``qkv_bias``), on q/k/v/o for Llama with ``attention_bias``. Qwen3 and
  Qwen3-MoE have per-head ``self_attn.{q,k}_norm.weight [head_dim]``; OLMoE has
  whole-projection norms ``q_norm.weight [heads*head_dim]``, ``k_norm.weight
  [kv_heads*head_dim]``, applied before the head split, and with ``clip_qkv`` clamps
  q, k and v after the norms.
* ``lm_head.weight`` is *absent* when ``tie_word_embeddings`` is true.
* Sharded saves (``max_shard_size``) write ``model-0000i-of-0000n.safetensors`` plus
  ``model.safetensors.index.json`` (``{"metadata": {...}, "weight_map": {key: file}}``);
  otherwise a single ``model.safetensors``. There is no ``rotary_emb.inv_freq``.

Config keys (``config.json``) as transformers 5.24 writes them:

* Rope is ``rope_parameters: {"rope_type", "rope_theta", ...scaling keys}``; there is no
  top-level ``rope_theta`` or ``rope_scaling`` (Hub configs have those instead).
* The dtype key is ``dtype`` (Hub configs: ``torch_dtype``).
* Qwen3-MoE writes ``num_local_experts`` (its ``attribute_map`` aliases ``num_experts``),
  whereas real Qwen3-MoE configs say ``num_experts``; Qwen2-MoE and OLMoE write
  ``num_experts``; Mixtral writes ``num_local_experts``. All write
  ``num_experts_per_tok``; Qwen*-MoE ``moe_intermediate_size``, ``decoder_sparse_step``,
  ``mlp_only_layers`` and ``norm_topk_prob``; Qwen2-MoE ``shared_expert_intermediate_size``
  and ``qkv_bias``. Mixtral/OLMoE expert width is ``intermediate_size``.
* ``layer_types`` is written by Qwen2, Qwen3 and Qwen2-MoE only. Qwen2/Qwen3 mark layers
  ``i >= max_window_layers`` as sliding when ``use_sliding_window``; Qwen2-MoE marks
  layers with ``(i + 1) % 2 == 1 and i < max_window_layers``. Qwen2-MoE writes
  ``sliding_window: 0`` when disabled, Qwen3/Qwen3-MoE ``null``. Mixtral has no switch:
  a non-null ``sliding_window`` applies to every layer. A window ``w`` lets query ``i``
  see keys ``j`` with ``i - w < j <= i`` (``w`` keys including itself).
* ``head_dim``: written by Qwen3, Qwen3-MoE, Llama (derived) and Mixtral (``null``);
  absent for Qwen2, Qwen2-MoE and OLMoE (use ``hidden_size // num_attention_heads``).

``dtype`` may be passed among the overrides (``"bfloat16"``, ``"float16"``, ...) to save
the weights in that dtype; the default is float32. Weights are reproducible on one
machine and torch build (they use ``torch.randn``); the built-in models of
:mod:`lynx.embedded` are the ones that are bit-exact across machines.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from lynx.testing.configs import ARCHITECTURES, BASE_CONFIGS, VARIANTS
from lynx.testing.init import reinit_robust
from lynx.testing.tokenizer import BOS_TOKEN_ID, EOS_TOKEN_ID, build_tokenizer

__all__ = ["ARCHITECTURES", "VARIANTS", "build_tiny_checkpoint", "build_variant"]

DEFAULT_VOCAB_SIZE = 512


def _transformers_major() -> int:
    import transformers

    return int(transformers.__version__.split(".")[0])


def _legacy_rope(kwargs: dict[str, Any]) -> dict[str, Any]:
    """transformers < 5 spells ``rope_parameters`` as ``rope_theta`` + ``rope_scaling``."""
    params = dict(kwargs.pop("rope_parameters", None) or {})
    if "rope_theta" in params:
        kwargs["rope_theta"] = params.pop("rope_theta")
    if params.get("rope_type", "default") != "default":
        kwargs["rope_scaling"] = params
    return kwargs


def build_tiny_checkpoint(
    architecture: str,
    out_dir: str | Path,
    seed: int = 0,
    max_shard_size: int | str | None = None,
    **config_overrides: Any,
) -> Path:
    """Write a tiny random checkpoint of ``architecture`` into ``out_dir`` and return it.

    ``config_overrides`` replace entries of the architecture's base config (see
    :data:`lynx.testing.configs.BASE_CONFIGS`); ``vocab_size`` also sizes the tokenizer.
    ``max_shard_size`` (e.g. ``"20KB"``) makes ``save_pretrained`` shard the weights.
    The same arguments always produce the same weights.
    """
    import transformers

    if architecture not in BASE_CONFIGS:
        raise ValueError(
            f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}"
        )
    kwargs = copy.deepcopy(BASE_CONFIGS[architecture])
    kwargs.update(copy.deepcopy(config_overrides))
    dtype_names = (kwargs.pop("dtype", None), kwargs.pop("torch_dtype", None))
    dtype = getattr(torch, str(dtype_names[0] or dtype_names[1] or "float32"))
    kwargs.setdefault("vocab_size", DEFAULT_VOCAB_SIZE)
    # The tokenizer's ids, not the class defaults (OLMoE defaults to eos 50279).
    kwargs.update(bos_token_id=BOS_TOKEN_ID, eos_token_id=EOS_TOKEN_ID, pad_token_id=EOS_TOKEN_ID)
    if _transformers_major() < 5:
        kwargs = _legacy_rope(kwargs)

    config_cls = getattr(transformers, architecture.replace("ForCausalLM", "Config"))
    model_cls = getattr(transformers, architecture)
    config = config_cls(**kwargs)
    # fork_rng: the caller's global RNG state is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # transformers' own init, overwritten below; kept repeatable
        model = model_cls(config).eval()
    reinit_robust(model, seed)
    model.to(dtype)
    model.generation_config = transformers.GenerationConfig(
        bos_token_id=BOS_TOKEN_ID, eos_token_id=EOS_TOKEN_ID, pad_token_id=EOS_TOKEN_ID
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_kwargs: dict[str, Any] = (
        {} if max_shard_size is None else {"max_shard_size": max_shard_size}
    )
    model.save_pretrained(out, **save_kwargs)
    build_tokenizer(out, vocab_size=config.vocab_size, seed=seed)
    return out


def build_variant(name: str, out_dir: str | Path, seed: int = 0, **extra: Any) -> Path:
    """Build the named entry of :data:`VARIANTS` into ``out_dir``.

    ``extra`` is passed on to :func:`build_tiny_checkpoint` (``max_shard_size``, further
    config overrides).
    """
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
    spec = dict(VARIANTS[name])
    architecture = spec.pop("architecture")
    return build_tiny_checkpoint(architecture, out_dir, seed=seed, **{**spec, **extra})
