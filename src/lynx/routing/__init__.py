"""Expert selection for MoE layers: plain top-k and the batch-aware LYNX and OEA policies.

This package is the one implementation of each policy; model layers, the engine and the
benchmarks all call :func:`select_experts`. The policies are specified in
``docs/method.md``; fused kernels must reproduce these results exactly.
"""

from lynx.routing.config import POLICIES, SCORINGS, RoutingConfig, default_routing_params, parse_routing_args
from lynx.routing.select import select_experts
from lynx.routing.stats import count_active_experts

__all__ = [
    "POLICIES",
    "SCORINGS",
    "RoutingConfig",
    "count_active_experts",
    "default_routing_params",
    "parse_routing_args",
    "select_experts",
]
