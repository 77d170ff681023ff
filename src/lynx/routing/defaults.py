"""Default routing parameters per model shape: the published LYNX settings and our rule.

LYNX has no published closed formula from ``(num_experts, top_k)`` to ``(alpha, beta)``;
its authors tuned one setting per model. We keep those settings as a table (with their
provenance) and fall back to a simple rule for shapes nobody has tuned yet.

Rule for untuned shapes (provisional; re-check it with an accuracy/speed sweep):

* ``num_experts <= 16`` (coarse experts, Mixtral-like): ``alpha=0.7, beta=1``. Mixtral is
  the only coarse-grained published point. Bin 0 then spans ~1.4 nats, i.e. every expert
  with probability >= ~24% of the top-1's, and everything else shares one lower bin.
* otherwise (fine-grained experts): ``alpha=3, beta=2``, the modal published setting
  (Qwen3-30B-A3B, Qwen3-235B and GPT-OSS-120B; both k=4 and k=8). Bins are 1/3 nat wide
  and a token distinguishes three levels. The two other settings (Qwen2-57B beta=4,
  DeepSeek-Coder-V2 alpha~1.1) come from per-model tuning, so we do not extrapolate them.

OEA keeps ``k0 = round_half_up(5 * k / 8)`` (at least 1): OEA's k0=5 for k=8 kept accuracy
within noise, and scaling it with ``k`` keeps the same fraction of guaranteed experts.
"""

from __future__ import annotations

import math
from typing import NamedTuple


class PublishedSetting(NamedTuple):
    """One LYNX setting reported by its authors for one model."""

    model: str
    architecture: str  # Hugging Face ``architectures[0]``
    num_experts: int
    top_k: int
    alpha: float
    beta: int


LYNX_PUBLISHED: tuple[PublishedSetting, ...] = (
    PublishedSetting("Mixtral-8x7B", "MixtralForCausalLM", 8, 2, 0.7, 1),
    PublishedSetting("Qwen2-57B-A14B", "Qwen2MoeForCausalLM", 64, 8, 3.0, 4),
    PublishedSetting("Qwen3-30B-A3B", "Qwen3MoeForCausalLM", 128, 8, 3.0, 2),
    PublishedSetting("Qwen3-235B-A22B", "Qwen3MoeForCausalLM", 128, 8, 3.0, 2),
    PublishedSetting("DeepSeek-Coder-V2", "DeepseekV2ForCausalLM", 160, 6, 1.1, 2),
    PublishedSetting("GPT-OSS-120B", "GptOssForCausalLM", 128, 4, 3.0, 2),
)

# Lookups. The architecture key only matters if two architectures of the same shape were
# ever tuned differently (not the case today); the first entry wins on duplicates, and
# duplicates in the table above agree.
_BY_ARCHITECTURE: dict[tuple[str, int, int], PublishedSetting] = {}
_BY_SHAPE: dict[tuple[int, int], PublishedSetting] = {}
for _s in LYNX_PUBLISHED:
    _BY_ARCHITECTURE.setdefault((_s.architecture, _s.num_experts, _s.top_k), _s)
    _BY_SHAPE.setdefault((_s.num_experts, _s.top_k), _s)
del _s

COARSE_EXPERTS_MAX = 16  # num_experts at or below this use the Mixtral-like rule


def lynx_defaults(num_experts: int, top_k: int, architecture: str | None = None) -> dict:
    """``{"alpha": float, "beta": int}`` for a model: published setting, else the rule."""
    hit = _BY_ARCHITECTURE.get((architecture, num_experts, top_k)) if architecture else None
    hit = hit or _BY_SHAPE.get((num_experts, top_k))
    if hit is not None:
        return {"alpha": hit.alpha, "beta": hit.beta}
    if num_experts <= COARSE_EXPERTS_MAX:
        return {"alpha": 0.7, "beta": 1}
    return {"alpha": 3.0, "beta": 2}


def oea_defaults(top_k: int) -> dict:
    """``{"k0": int}``: 5/8 of ``top_k`` rounded half up, clamped to ``[1, top_k]``."""
    k0 = math.floor(5 * top_k / 8 + 0.5)
    return {"k0": min(top_k, max(1, k0))}
