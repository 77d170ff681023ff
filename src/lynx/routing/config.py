"""Routing policy names, parameter validation and :class:`RoutingConfig`.

Every check here looks at Python values only (names, numbers, shapes), never at tensor
contents, so it is safe to run in front of CUDA-graph-captured code.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from lynx.errors import RoutingConfigError
from lynx.routing.defaults import lynx_defaults, oea_defaults

POLICIES: tuple[str, ...] = ("topk", "lynx", "oea")
SCORINGS: tuple[str, ...] = ("softmax", "sigmoid")

# Parameters each policy accepts (in documentation order).
POLICY_PARAMS: dict[str, tuple[str, ...]] = {"topk": (), "lynx": ("alpha", "beta"), "oea": ("k0",)}

ParamValue = Union[int, float]


def check_policy(policy: str) -> None:
    """Raise :class:`RoutingConfigError` unless ``policy`` is one of :data:`POLICIES`."""
    if policy not in POLICIES:
        raise RoutingConfigError(
            f"unknown routing policy {policy!r}; valid policies: {', '.join(POLICIES)}"
        )


def check_scoring(scoring: str) -> None:
    """Raise :class:`RoutingConfigError` unless ``scoring`` is one of :data:`SCORINGS`."""
    if scoring not in SCORINGS:
        raise RoutingConfigError(
            f"unknown router scoring {scoring!r}; valid scorings: {', '.join(SCORINGS)}"
        )


def _is_int(v: Any) -> bool:
    # bool is an Integral, but ``beta=True`` is a bug, not a bin count.
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check_params(policy: str, params: Mapping[str, Any], top_k: int | None = None) -> None:
    """Validate parameter names and values for ``policy``.

    ``top_k`` is needed for the upper bound of OEA's ``k0``; without it only ``k0 >= 1``
    is checked (:meth:`RoutingConfig.resolve` checks the rest against the model).
    """
    check_policy(policy)
    accepted = POLICY_PARAMS[policy]
    for name in params:
        if name not in accepted:
            what = ", ".join(accepted) if accepted else "none"
            raise RoutingConfigError(
                f"unknown parameter {name!r} for routing policy {policy!r}; accepted: {what}"
            )
    if "alpha" in params:
        a = params["alpha"]
        ok = isinstance(a, numbers.Real) and not isinstance(a, bool) and math.isfinite(a)
        if not ok or a <= 0:
            raise RoutingConfigError(f"lynx alpha must be a finite number > 0, got {a!r}")
    if "beta" in params:
        b = params["beta"]
        if not _is_int(b) or b < 1:
            raise RoutingConfigError(f"lynx beta must be an integer >= 1, got {b!r}")
    if "k0" in params:
        k0 = params["k0"]
        hi = "top_k" if top_k is None else f"top_k (= {top_k})"
        if not _is_int(k0) or k0 < 1 or (top_k is not None and k0 > top_k):
            raise RoutingConfigError(f"oea k0 must be an integer with 1 <= k0 <= {hi}, got {k0!r}")


def check_shape(num_experts: int, top_k: int) -> None:
    """Raise :class:`RoutingConfigError` unless ``1 <= top_k <= num_experts``."""
    if not (_is_int(num_experts) and _is_int(top_k) and 1 <= top_k <= num_experts):
        raise RoutingConfigError(
            f"need 1 <= top_k <= num_experts, got top_k={top_k!r}, num_experts={num_experts!r}"
        )


def default_routing_params(
    policy: str, num_experts: int, top_k: int, architecture: str | None = None
) -> dict[str, ParamValue]:
    """Default parameters of ``policy`` for a model with ``num_experts`` experts, ``top_k``.

    LYNX: the published setting for this shape (see :mod:`lynx.routing.defaults`), else a
    documented rule. OEA: ``k0 = round_half_up(5 * top_k / 8)``. topk: ``{}``.
    """
    check_policy(policy)
    check_shape(num_experts, top_k)
    if policy == "lynx":
        return lynx_defaults(num_experts, top_k, architecture)
    if policy == "oea":
        return oea_defaults(top_k)
    return {}


def resolve_params(
    policy: str,
    params: Mapping[str, Any],
    num_experts: int,
    top_k: int,
    architecture: str | None = None,
) -> dict[str, ParamValue]:
    """Defaults for the model overridden by ``params``, validated, with normalised types."""
    check_params(policy, params, top_k)
    out = default_routing_params(policy, num_experts, top_k, architecture)
    out.update(params)
    if "alpha" in out:
        out["alpha"] = float(out["alpha"])
    for name in ("beta", "k0"):
        if name in out:
            out[name] = int(out[name])
    return out


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """A routing policy and its parameter overrides, validated on construction.

    ``params`` may be given as a dict; it is stored as a sorted tuple of ``(name, value)``
    pairs so the config stays hashable. Parameters left out take the model's defaults
    in :meth:`resolve`.
    """

    policy: str = "topk"
    params: tuple[tuple[str, ParamValue], ...] | Mapping[str, ParamValue] = ()

    def __post_init__(self) -> None:
        try:
            items = dict(self.params)
        except (TypeError, ValueError):
            raise RoutingConfigError(
                f"routing params must be a mapping of name -> value, got {self.params!r}"
            ) from None
        check_params(self.policy, items)
        object.__setattr__(self, "params", tuple(sorted(items.items())))

    def resolve(
        self, num_experts: int, top_k: int, architecture: str | None = None
    ) -> dict[str, ParamValue]:
        """Full parameter dict for a model: defaults filled in, checked against ``top_k``."""
        return resolve_params(self.policy, dict(self.params), num_experts, top_k, architecture)


def parse_routing_args(items: Sequence[str] | None) -> dict[str, ParamValue]:
    """Command-line ``NAME=VALUE`` items -> params (``"alpha=3"`` -> ``{"alpha": 3}``).

    Values are read as JSON (numbers, booleans) and fall back to strings; the policy
    validates names and values later.
    """
    params: dict[str, ParamValue] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RoutingConfigError(f"routing parameter {item!r} must look like NAME=VALUE")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params
