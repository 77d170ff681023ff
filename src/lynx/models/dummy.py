"""Random weights for timing real-size models without their checkpoints.

Plain random routers are a trap: with i.i.d. logits every expert is equally likely for
every token, so a batch touches almost all experts under top-k (e.g. ~82 of 128 at batch
16 for Qwen3-30B-A3B) and batch-aware policies look better than on trained models. Real
routers are skewed inside a batch: OEA measured ~49 distinct experts at batch 16 on the
real Qwen3-30B-A3B. So dummy routers are *calibrated*:

* router logits are built as ``z[t, e] = a * g[e] * c_t + TOKEN_STD * eps[t, e]``, where
  ``g[e] ~ N(0, 1)`` is a per-layer expert popularity, ``c_t ~ 1`` the token's alignment
  with the mean router input, and ``eps`` token-specific noise;
* ``a`` is found by bisection, per MoE layer, on the layer's actual inputs from a
  calibration batch, so that top-k touches ``TARGET_RATIO`` of the experts uniform routing
  would touch at batch 16 (``TARGET_RATIO = 49 / 81.9``, OEA's measurement).

``TOKEN_STD`` (how confident each token is) is an assumption, not a measurement; results
on dummy weights are timings of a shape, never claims about a real model.
"""

from __future__ import annotations

import math

import torch

from lynx.context import ForwardContext, forward_context
from lynx.layers.moe import SparseMoE
from lynx.models.decoder import DecoderForCausalLM

TARGET_RATIO = 49.0 / 81.9  # real / uniform distinct experts at batch 16 (Qwen3-30B-A3B, OEA)
TOKEN_STD = 2.0  # std of the token-specific part of the router logits (assumed)
CALIB_BATCH = 16
CALIB_TOKENS = 512
WEIGHT_GAIN = 0.1  # random linear layers: std WEIGHT_GAIN / sqrt(fan_in) (small residual updates)


def expected_uniform_experts(num_experts: int, top_k: int, batch: int) -> float:
    """Distinct experts a batch touches when every token picks k experts uniformly."""
    return num_experts * (1 - (1 - top_k / num_experts) ** batch)


def mean_distinct(logits: torch.Tensor, top_k: int, batch: int) -> float:
    """Mean distinct top-k experts over consecutive batches of ``batch`` rows of ``logits [T, N]``."""
    t, n = logits.shape
    ids = logits.topk(top_k, dim=-1).indices[: t - t % batch]  # [T', k]
    hits = torch.zeros(t // batch, n, device=logits.device)
    hits.scatter_(1, ids.view(t // batch, batch * top_k), 1.0)  # [T'/B, N]
    return float(hits.sum(dim=1).mean())


@torch.no_grad()
def calibrated_router(x: torch.Tensor, num_experts: int, top_k: int, gen: torch.Generator) -> torch.Tensor:
    """Router weight ``[N, H]`` whose logits on ``x [T, H]`` have the calibrated skew."""
    x = x.float()
    mu = x.mean(dim=0)  # [H] shared direction of the router inputs
    mu_hat = mu / mu.norm()
    resid = x - mu  # [T, H]
    resid_rms = resid.norm(dim=1).pow(2).mean().sqrt()
    noise = torch.randn(num_experts, x.shape[1], generator=gen, device=x.device)  # [N, H]
    noise -= (noise @ mu_hat)[:, None] * mu_hat[None, :]  # no hidden popularity along mu
    token_part = noise * (TOKEN_STD / resid_rms)  # [N, H]
    pop = torch.randn(num_experts, generator=gen, device=x.device)  # [N] expert popularity
    pop_dir = pop[:, None] * (mu / mu.norm().pow(2))[None, :]  # [N, H]: logit a*g_e on mu
    target = TARGET_RATIO * expected_uniform_experts(num_experts, top_k, CALIB_BATCH)
    lo, hi = 0.0, 50.0
    for _ in range(30):  # distinct experts fall as the popularity scale grows
        mid = (lo + hi) / 2
        if mean_distinct(x @ (mid * pop_dir + token_part).T, top_k, CALIB_BATCH) > target:
            lo = mid
        else:
            hi = mid
    return (hi * pop_dir + token_part)


@torch.no_grad()
def init_dummy_weights(model: DecoderForCausalLM, seed: int = 0) -> None:
    """Fill every parameter with random values on its device, then calibrate the routers."""
    device = model.embed_tokens.weight.device
    gen = torch.Generator(device=device).manual_seed(seed)
    cfg = model.config
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            p.fill_(1.0)
        elif name.endswith(".bias"):
            p.normal_(0.0, 0.01, generator=gen)
        elif name == "embed_tokens.weight":
            # A shared direction in every embedding gives router inputs a common component,
            # which the calibrated routers turn into batch-level expert popularity.
            shared = torch.randn(p.shape[1], generator=gen, device=device)
            p.normal_(0.0, 1.0, generator=gen).add_(shared[None, :].to(p.dtype))
        else:
            p.normal_(0.0, WEIGHT_GAIN / math.sqrt(p.shape[-1]), generator=gen)
    model.tie_weights()
    if cfg.is_moe:
        _calibrate_routers(model, gen)


def _calibrate_routers(model: DecoderForCausalLM, gen: torch.Generator) -> None:
    device = model.embed_tokens.weight.device
    cfg = model.config
    seq = CALIB_TOKENS // CALIB_BATCH  # CALIB_BATCH sequences
    ids = torch.randint(0, cfg.vocab_size, (CALIB_TOKENS,), generator=gen, device=device)
    pos = torch.arange(seq, device=device).repeat(CALIB_TOKENS // seq)
    hooks = []

    def calibrate(module: SparseMoE, args: tuple[torch.Tensor]) -> None:
        # Consecutive rows = the same position of CALIB_BATCH different sequences, like
        # the tokens of one decode step.
        x = args[0].view(CALIB_BATCH, seq, -1).transpose(0, 1).reshape(CALIB_TOKENS, -1)  # [T, H]
        w = calibrated_router(x, module.num_experts, module.top_k, gen)
        module.gate.weight.copy_(w.to(module.gate.weight.dtype))

    for layer in model.layers:
        if isinstance(layer.mlp, SparseMoE):
            hooks.append(layer.mlp.register_forward_pre_hook(calibrate))
    try:
        ctx = ForwardContext(is_prefill=True, cu_seqlens=list(range(0, CALIB_TOKENS + 1, seq)))
        with forward_context(ctx):
            model(ids, pos)  # layers run in order: each router sees inputs shaped by the last
    finally:
        for h in hooks:
            h.remove()
