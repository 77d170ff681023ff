"""Random routing problems for the property and reference tests."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXPERT_COUNTS = (4, 8, 16, 64, 128)
LOGIT_KINDS = ("gaussian", "skewed", "ties", "bf16")
VALID_MODES = ("all", "random", "one", "none")

# Each example is a few ms of torch; no deadline (first calls warm up kernels).
# LYNX_ROUTING_EXAMPLES=5000 turns the suite into a soak test.
SETTINGS = settings(
    max_examples=int(os.environ.get("LYNX_ROUTING_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def make_logits(seed: int, t: int, n: int, kind: str) -> torch.Tensor:
    """``[t, n]`` router logits; ``skewed`` mimics a trained router, ``ties`` has many ties."""
    g = torch.Generator().manual_seed(seed)
    if kind == "ties":  # a coarse grid: many exactly equal logits in every row
        return torch.randint(-4, 3, (t, n), generator=g).float() / 2
    if kind == "bf16":
        return (torch.randn(t, n, generator=g) * 3).to(torch.bfloat16)
    if kind == "skewed":
        return skewed_logits(g, t, n)
    scale = float(torch.empty(()).uniform_(0.1, 6.0, generator=g))
    return torch.randn(t, n, generator=g) * scale


def skewed_logits(g: torch.Generator, t: int, n: int, clusters: int = 4) -> torch.Tensor:
    """Trained-router-like logits: per-expert popularity plus token topics plus noise."""
    popularity = torch.randn(n, generator=g) * 0.5  # [N]
    centroids = torch.randn(clusters, n, generator=g) * 1.5  # [C, N]
    topic = torch.randint(0, clusters, (t,), generator=g)  # [T]
    return popularity + centroids[topic] + torch.randn(t, n, generator=g)  # [T, N]


def make_valid(seed: int, t: int, mode: str) -> torch.Tensor | None:
    """``[t]`` bool validity mask (``None`` for all valid)."""
    if mode == "all":
        return None
    g = torch.Generator().manual_seed(seed + 1)
    if mode == "random":
        return torch.rand(t, generator=g) < 0.6
    valid = torch.zeros(t, dtype=torch.bool)
    if mode == "one":
        valid[int(torch.randint(0, t, (1,), generator=g))] = True
    return valid


@dataclass
class Case:
    logits: torch.Tensor  # [T, N]
    top_k: int
    policy: str
    scoring: str
    renormalize: bool
    valid: torch.Tensor | None  # [T] or None
    params: dict = field(default_factory=dict)

    @property
    def num_experts(self) -> int:
        return self.logits.shape[1]

    def valid_mask(self) -> torch.Tensor:
        t = self.logits.shape[0]
        return torch.ones(t, dtype=torch.bool) if self.valid is None else self.valid

    def kwargs(self) -> dict:
        return dict(
            top_k=self.top_k,
            policy=self.policy,
            scoring=self.scoring,
            renormalize=self.renormalize,
            **self.params,
        )


def policy_params(policy: str, top_k: int) -> st.SearchStrategy[dict]:
    """Explicit parameters, or ``{}`` for the model defaults."""
    if policy == "lynx":
        explicit = st.fixed_dictionaries(
            {
                "alpha": st.sampled_from([0.3, 0.7, 1.1, 3.0, 6.0]),
                "beta": st.integers(1, 5),
            }
        )
    elif policy == "oea":
        explicit = st.fixed_dictionaries({"k0": st.integers(1, top_k)})
    else:
        return st.just({})
    return st.one_of(st.just({}), explicit)


@st.composite
def cases(
    draw: st.DrawFn,
    policies: tuple[str, ...] = ("topk", "lynx", "oea"),
    max_rows: int = 64,
    valid_modes: tuple[str, ...] = VALID_MODES,
) -> Case:
    t = draw(st.integers(1, max_rows))
    n = draw(st.sampled_from(EXPERT_COUNTS))
    k = draw(st.integers(1, min(n - 1, 8)))
    policy = draw(st.sampled_from(policies))
    seed = draw(st.integers(0, 2**31 - 1))
    return Case(
        logits=make_logits(seed, t, n, draw(st.sampled_from(LOGIT_KINDS))),
        top_k=k,
        policy=policy,
        scoring=draw(st.sampled_from(["softmax", "sigmoid"])),
        renormalize=draw(st.booleans()),
        valid=make_valid(seed, t, draw(st.sampled_from(valid_modes))),
        params=draw(policy_params(policy, k)),
    )
