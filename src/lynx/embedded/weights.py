"""Deterministic random weights of the built-in models, in the Hugging Face key layout.

The weights are random, not trained; they are shaped so the model behaves like a trained
MoE in the ways Lynx cares about:

* **Bit-exact everywhere.** Every tensor comes from its own ``torch.Generator`` (seeded
  from the model seed and the tensor name, so tensors do not depend on each other's
  order) through ``torch.randint`` only: integer draws are the same on every CPU and
  torch build, whereas ``torch.randn`` uses vectorised ``log``/``cos`` whose last bits
  differ between AVX2, AVX-512 and ARM kernels. Four integer uniforms are summed
  (Irwin-Hall: a bounded bell curve), dot products are taken on these integers (exact,
  unlike BLAS reductions whose order varies by CPU), and the rest is elementwise IEEE
  float64 arithmetic, cast to float32 and then to bfloat16 (round to nearest even).
* **Skewed, confident routing.** Trained LLM residual streams share a large common
  direction, and trained routers prefer some experts. Here every token embedding has a
  component ``EMBED_SHARED * sqrt(H)`` along a fixed unit vector ``u``, and router row
  ``e`` is ``ROUTER_TOKEN * z_e + beta_e * u`` with ``z_e`` orthogonal to ``u``: the
  ``z_e`` part scores the token, the ``beta_e`` part is a per-expert preference that is
  the same for every token. Router logits then have a token-dependent part of std ~2 and
  an expert prior of std ~2. Measured with transformers on tiny-moe (16 prompts decoded
  together, greedy): a decode step's top-4 of 32 touches 14-21 experts per layer, mean
  ~17 (uniformly random routing would touch ~28), and the mean top-1 softmax weight is
  ~0.53. Nothing here is trained: routing is skewed by construction, not learned.
* **Readable, decisive outputs.** ``lm_head`` rows are orthogonal to ``u`` (so the
  shared direction does not favour one output token for every input), give logits with
  std ~4 (greedy decoding is not decided by rounding noise), and the rows of the 256
  single-byte tokens are scaled by ``BYTE_ROW_SCALE`` so the model mostly emits the
  learned word pieces rather than control bytes and broken UTF-8.
* **Stable residual stream.** Residual-branch outputs (``o_proj``, ``down_proj``) use a
  gain of ``RESIDUAL_GAIN`` < 1 so the shared direction stays dominant in every layer.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator

import torch

from lynx.embedded.spec import BuiltinSpec
from lynx.testing.tokenizer import SPECIAL_TOKENS

EMBED_SHARED = 0.6  # shared-direction component of embeddings, in units of sqrt(H)
RESIDUAL_GAIN = 0.5  # output std of o_proj / down_proj for unit-scale inputs
ROUTER_TOKEN = 2.0  # std of the token-dependent router logits
ROUTER_PRIOR = 2.0  # std of the per-expert preference (shared by all tokens)
LM_HEAD_GAIN = 5.0  # std of the output logits
BYTE_ROW_SCALE = 0.5  # lm_head rows of single-byte tokens (ids 2..257)
NORM_NOISE = 0.05  # RMSNorm weights are 1 + NORM_NOISE * noise
BYTE_TOKEN_IDS = range(len(SPECIAL_TOKENS), len(SPECIAL_TOKENS) + 256)

_BITS = 20
_IRWIN_HALL_TERMS = 4
# A sum of 4 uniforms on {0..2^20-1} has mean 2*(2^20-1) and variance 4*(2^40-1)/12.
_CENTER = _IRWIN_HALL_TERMS * ((1 << _BITS) - 1) // 2
_UNIT = 1.0 / math.sqrt(_IRWIN_HALL_TERMS * ((1 << (2 * _BITS)) - 1) / 12.0)


def _generator(seed: int, name: str) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return torch.Generator(device="cpu").manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def draw_ints(seed: int, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Centred int64 Irwin-Hall draws (|x| < 2^22, std ``1 / _UNIT``), bit-exact."""
    n = math.prod(shape)
    ints = torch.randint(0, 1 << _BITS, (_IRWIN_HALL_TERMS, n), generator=_generator(seed, name))
    total = ints[0] - _CENTER
    for term in ints[1:]:  # elementwise adds: much faster than a strided .sum(0)
        total += term
    return total.reshape(shape)


def draw(seed: int, name: str, shape: tuple[int, ...], std: float = 1.0) -> torch.Tensor:
    """Bell-shaped float64 noise with mean 0 and standard deviation ``std``, bit-exact."""
    return draw_ints(seed, name, shape).to(torch.float64) * (_UNIT * std)


def _orthogonal_draw(
    seed: int, name: str, shape: tuple[int, int], std: float, u: torch.Tensor
) -> torch.Tensor:
    """Like :func:`draw`, with each row's component along integer vector ``u`` removed.

    Dot products are taken on the integer draws (exact whatever the summation order: no
    BLAS, whose float reductions differ between CPUs); the rest is elementwise float64.
    """
    x = draw_ints(seed, name, shape)
    coef = (x * u).sum(-1).to(torch.float64) / float((u * u).sum())
    return (x.to(torch.float64) - coef[:, None] * u.to(torch.float64)) * (_UNIT * std)


def _norm_weight(seed: int, name: str, size: int) -> torch.Tensor:
    return 1.0 + draw(seed, name, (size,), NORM_NOISE)


def _linear(
    seed: int, name: str, out_features: int, in_features: int, gain: float = 1.0
) -> torch.Tensor:
    return draw(seed, name, (out_features, in_features), gain / math.sqrt(in_features))


def iter_weights(spec: BuiltinSpec) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield ``(hf_key, float64 tensor)`` for every weight of the built-in model."""
    s, h = spec.seed, spec.hidden_size
    u = draw_ints(s, "shared_direction", (h,))  # integer direction; unit vector u_hat below
    u_hat = u.to(torch.float64) / math.sqrt(float((u * u).sum()))

    embed = _orthogonal_draw(s, "model.embed_tokens.weight", (spec.vocab_size, h), 1.0, u)
    yield "model.embed_tokens.weight", embed + (EMBED_SHARED * math.sqrt(h)) * u_hat

    q_out, kv_out = spec.num_heads * spec.head_dim, spec.num_kv_heads * spec.head_dim
    for layer in range(spec.num_layers):
        p = f"model.layers.{layer}."
        yield p + "input_layernorm.weight", _norm_weight(s, p + "input_layernorm.weight", h)
        for proj, out in (("q_proj", q_out), ("k_proj", kv_out), ("v_proj", kv_out)):
            key = f"{p}self_attn.{proj}.weight"
            yield key, _linear(s, key, out, h)
        yield (
            p + "self_attn.o_proj.weight",
            _linear(s, p + "self_attn.o_proj.weight", h, q_out, RESIDUAL_GAIN),
        )
        for norm in ("q_norm", "k_norm"):
            key = f"{p}self_attn.{norm}.weight"
            yield key, _norm_weight(s, key, spec.head_dim)
        yield (
            p + "post_attention_layernorm.weight",
            _norm_weight(s, p + "post_attention_layernorm.weight", h),
        )
        if spec.is_moe:
            yield from _moe_weights(spec, p + "mlp.", u, u_hat)
        else:
            yield from _mlp_weights(s, p + "mlp.", h, spec.intermediate_size)

    yield "model.norm.weight", _norm_weight(s, "model.norm.weight", h)
    head = _orthogonal_draw(
        s, "lm_head.weight", (spec.vocab_size, h), LM_HEAD_GAIN / math.sqrt(h), u
    )
    head[BYTE_TOKEN_IDS.start : BYTE_TOKEN_IDS.stop] *= BYTE_ROW_SCALE
    yield "lm_head.weight", head


def _mlp_weights(
    seed: int, prefix: str, hidden: int, inter: int
) -> Iterator[tuple[str, torch.Tensor]]:
    """SwiGLU MLP ``down(silu(gate(x)) * up(x))`` in the HF key names under ``prefix``."""
    yield prefix + "gate_proj.weight", _linear(seed, prefix + "gate_proj.weight", inter, hidden)
    yield prefix + "up_proj.weight", _linear(seed, prefix + "up_proj.weight", inter, hidden)
    yield (
        prefix + "down_proj.weight",
        _linear(seed, prefix + "down_proj.weight", hidden, inter, RESIDUAL_GAIN),
    )


def _moe_weights(
    spec: BuiltinSpec, prefix: str, u: torch.Tensor, u_hat: torch.Tensor
) -> Iterator[tuple[str, torch.Tensor]]:
    """Router plus per-expert MLPs, keyed like Qwen3-MoE on the Hub."""
    s, h, n = spec.seed, spec.hidden_size, spec.num_experts
    # After RMSNorm a token has norm ~sqrt(H): a component ~share * sqrt(H) along u_hat
    # and ~rest * sqrt(H) orthogonal to it.
    share = EMBED_SHARED / math.sqrt(1.0 + EMBED_SHARED**2)
    rest = 1.0 / math.sqrt(1.0 + EMBED_SHARED**2)
    z = _orthogonal_draw(s, prefix + "gate.weight", (n, h), ROUTER_TOKEN / (rest * math.sqrt(h)), u)
    beta = draw(s, prefix + "gate.prior", (n,), ROUTER_PRIOR / (share * math.sqrt(h)))
    yield prefix + "gate.weight", z + beta[:, None] * u_hat
    for e in range(n):
        yield from _mlp_weights(s, f"{prefix}experts.{e}.", h, spec.moe_intermediate_size)
