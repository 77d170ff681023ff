"""``lynx bench decode --variant NAME=ENV=VALUE;...``: the same decode bench under several settings.

Kernel and dispatch knobs are environment variables read at import (``LYNX_FUSED_ROUTER``,
``LYNX_ROUTING_KERNEL_CONFIG``, ``LYNX_ATTENTION_BACKEND``, ...), so each variant runs the
whole bench in its own child process with its variables set, one after the other, in one
invocation: variants are compared as ratios inside one run (same GPU, same minutes, same
prompts), never across runs. The first variant is the reference of the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from lynx.errors import LynxError

ENV_NAME_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def parse_variant(spec: str) -> tuple[str, dict[str, str]]:
    """``'name=VAR=value;VAR2=value2'`` -> ``('name', {'VAR': 'value', 'VAR2': 'value2'})``.

    ``'name='`` is a variant with no changes (e.g. the reference). Values may hold ``=``
    and ``,`` (``LYNX_ROUTING_KERNEL_CONFIG=fused_max_rows=64,fused_warps=16``), not ``;``.
    """
    name, sep, rest = spec.partition("=")
    name = name.strip()
    if not sep or not name:
        raise LynxError(f"--variant {spec!r}: expected NAME=VAR=VALUE[;VAR=VALUE...] or NAME= for no change")
    env: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in rest.split(";"))):
        var, eq, value = item.partition("=")
        if not eq or not var or not set(var) <= ENV_NAME_CHARS:
            raise LynxError(f"--variant {name}: {item!r} is not VAR=VALUE with an upper-case variable name")
        env[var] = value
    return name, env


def parse_variants(specs: list[str]) -> dict[str, dict[str, str]]:
    """Ordered ``{name: env}``; names must be unique."""
    out: dict[str, dict[str, str]] = {}
    for spec in specs:
        name, env = parse_variant(spec)
        if name in out:
            raise LynxError(f"--variant {name} given twice")
        out[name] = env
    return out


def child_argv(args: argparse.Namespace) -> list[str]:
    """``lynx bench decode`` options reproducing ``args`` (without ``--variant`` and ``--json``)."""
    out = ["--model", args.model, "--routing", args.routing, "--batch", args.batch,
           "--prompt-len", str(args.prompt_len), "--decode-steps", str(args.decode_steps), "--device", args.device,
           "--dtype", args.dtype, "--gpu-memory-utilization", str(args.gpu_memory_utilization), "--seed", str(args.seed)]
    if args.load_format:
        out += ["--load-format", args.load_format]
    for param in args.routing_param or []:
        out += ["--routing-param", param]
    if args.enforce_eager:
        out.append("--enforce-eager")
    return out


def run_variants(args: argparse.Namespace) -> dict[str, Any]:
    """Run the decode bench once per variant (child processes); print the comparison; return all results."""
    from lynx.bench.decode import print_table

    variants = parse_variants(args.variant)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lynx_variants_") as tmp:
        for name, env in variants.items():
            path = Path(tmp) / f"{len(results)}.json"
            cmd = [sys.executable, "-m", "lynx.cli", "bench", "decode", *child_argv(args), "--json", str(path)]
            print(f"== variant {name}: " + (" ".join(f"{k}={v}" for k, v in env.items()) or "(no change)"), flush=True)
            proc = subprocess.run(cmd, env={**os.environ, **env})
            if proc.returncode or not path.exists():
                raise LynxError(f"variant {name} failed (exit {proc.returncode}); its output is above")
            results[name] = {"env": env, **json.loads(path.read_text())}
    result = {"variants": results}
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(result, indent=2))
    for name, res in results.items():
        print(f"\n[{name}]", end="")
        print_table(res)
    print("\n" + comparison_table(results))
    return result


def comparison_table(results: dict[str, Any]) -> str:
    """Step ms per (routing, batch) and variant, with the ratio to the first variant."""
    names = list(results)
    steps = {name: {(r["routing"], r["batch"]): r["step_ms"] for r in res["rows"]} for name, res in results.items()}
    keys = list(steps[names[0]])
    lines = [f"{'routing':<8}{'batch':>6}" + "".join(f"{n[:14]:>16}" for n in names) + "   ms/step (speed-up vs "
             + names[0] + ")"]
    for key in keys:
        ref = steps[names[0]][key]
        cells = []
        for n in names:
            ms = steps[n].get(key)
            cells.append(f"{'-':>16}" if ms is None else f"{ms:>8.3f} ({ref / ms:4.2f}x)")
        lines.append(f"{key[0]:<8}{key[1]:>6}" + "".join(cells))
    return "\n".join(lines)
