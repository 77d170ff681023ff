"""Weight initialisation that makes tiny random models numerically robust.

transformers initialises weights with ``normal(0, initializer_range=0.02)``. In a model
with ``hidden_size=32`` that makes every projection shrink its input by ~10x, so the
final hidden state is almost independent of the prompt and the logits are nearly
uniform: the top-2 logits of a 512-token vocabulary then differ by ~1e-6, and greedy
decoding flips under the rounding noise of a different (but correct) kernel. Tests that
compare Lynx's tokens with transformers' tokens would be flaky for no real reason.

:func:`reinit_robust` therefore re-draws every parameter so that signals keep unit scale
through the network and the outputs are decisive:

* matrices (2-D ``[out, in]`` and stacked 3-D ``[E, out, in]`` experts):
  ``normal(0, gain / sqrt(in))`` with ``gain`` 1.5, so each projection keeps activations
  around unit scale instead of shrinking them (std ~0.27 at ``in=32``);
* token embeddings: ``normal(0, 1)`` so the residual stream starts at unit scale;
* the LM head: std ``5 / sqrt(hidden)``, logits with std ~5, so the gap between the
  best two tokens is usually > 0.5 (vs ~1e-6 with the default init);
* routers (``*.gate.weight``): std ``3 / sqrt(hidden)``, router logits with std ~3, so the
  softmax is confident (top-1 weight typically 0.5-0.9) and the top-k set is not
  decided by near ties;
* RMSNorm weights: ``1 + normal(0, 0.1)``; biases: ``normal(0, 0.1)``.

Parameters are visited in sorted name order with a private ``torch.Generator`` so the
result depends only on the seed and the parameter shapes.
"""

from __future__ import annotations

import math
import re

import torch

# Gains as standard deviations of the output of one projection, for unit-scale inputs.
MATRIX_GAIN = 1.5
LM_HEAD_GAIN = 5.0
ROUTER_GAIN = 3.0
NORM_NOISE = 0.1
BIAS_STD = 0.1

# Router weights: Qwen*/OLMoE `mlp.gate.weight`, Mixtral `block_sparse_moe.gate.weight`
# (or `mlp.gate.weight` in transformers-5 module naming). `gate_proj` and
# `shared_expert_gate` do not match on purpose.
_ROUTER = re.compile(r"(^|\.)gate\.weight$")
_NORM = re.compile(r"norm[^.]*\.weight$")


def _std_for(name: str, param: torch.Tensor) -> tuple[float, float]:
    """(mean, std) of the fresh values of one parameter, chosen from its name and shape."""
    if param.ndim == 1:
        if _NORM.search(name):
            return 1.0, NORM_NOISE
        return 0.0, BIAS_STD
    fan_in = param.shape[-1]
    if name.endswith("embed_tokens.weight"):
        return 0.0, 1.0
    if name.endswith("lm_head.weight"):
        return 0.0, LM_HEAD_GAIN / math.sqrt(fan_in)
    if _ROUTER.search(name):
        return 0.0, ROUTER_GAIN / math.sqrt(fan_in)
    return 0.0, MATRIX_GAIN / math.sqrt(fan_in)


@torch.no_grad()
def reinit_robust(model: torch.nn.Module, seed: int = 0) -> None:
    """Re-draw all parameters of ``model`` in place (see the module docstring).

    Tied parameters (e.g. ``lm_head.weight`` is ``embed_tokens.weight``) are visited once,
    under their first name, so a tied head keeps the embedding's unit-scale values and
    gives logits with std ~sqrt(hidden).
    """
    gen = torch.Generator(device="cpu").manual_seed(seed)
    named = dict(model.named_parameters())  # de-duplicates tied parameters
    for name in sorted(named):
        param = named[name]
        mean, std = _std_for(name, param)
        fresh = torch.randn(param.shape, generator=gen, dtype=torch.float32) * std + mean
        param.copy_(fresh.to(param.dtype))
