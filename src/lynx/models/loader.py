"""Load a Hugging Face checkpoint directory into a :class:`DecoderForCausalLM`.

The model is built on the meta device, given uninitialised storage of the final dtype on
the final device once, then filled tensor by tensor from the memory-mapped safetensors
shards, so the weights never exist twice in memory. Per-expert tensors are written into
the stacked ``w13 [E, 2I, H]`` / ``w2 [E, H, I]`` parameters; q/k/v and gate/up are
written into their fused projections. Every parameter element must be written exactly
once, which catches missing, duplicated and misnamed tensors.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from lynx.errors import CheckpointError
from lynx.models.config import ModelConfig
from lynx.models.decoder import DecoderForCausalLM
from lynx.models.registry import get_arch_spec

# Tensors some checkpoints carry that are recomputed, not loaded.
_IGNORED = re.compile(r".*rotary_emb\.inv_freq$")


@dataclass(frozen=True, slots=True)
class Target:
    """Where one checkpoint tensor goes: ``param[index][rows]`` (index/rows optional)."""

    param: str
    expert: int | None = None  # index into the stacked expert dimension
    rows: tuple[int, int] | None = None  # row range of a fused projection


def checkpoint_files(model_dir: Path) -> list[Path]:
    """The safetensors shards of a checkpoint, validated against the index if present."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise CheckpointError(f"{index} is malformed (expected a 'weight_map' object): {e}") from None
        names = sorted(set(weight_map.values()))
        missing = [n for n in names if not (model_dir / n).is_file()]
        if missing:
            raise CheckpointError(
                f"checkpoint {model_dir} is incomplete: shard(s) listed in {index.name} are missing: "
                + ", ".join(missing)
            )
        return [model_dir / n for n in names]
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        bins = sorted(p.name for p in model_dir.glob("*.bin"))
        hint = f" (found {', '.join(bins)}: PyTorch .bin weights are not supported, convert to safetensors)" if bins else ""
        raise CheckpointError(f"no *.safetensors weights in {model_dir}{hint}")
    return files


class _NameMapper:
    """Maps checkpoint tensor names to :class:`Target` s for one model config."""

    def __init__(self, cfg: ModelConfig) -> None:
        spec = get_arch_spec(cfg.architecture)
        self.cfg = cfg
        q, kv = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
        self.qkv_rows = {"q_proj": (0, q), "k_proj": (q, q + kv), "v_proj": (q + kv, q + 2 * kv)}
        gate, up, down = spec.expert_names
        self.expert_part = {gate: "gate", up: "up", down: "down", "gate_proj": "gate", "up_proj": "up", "down_proj": "down"}
        self.moe_prefixes = {spec.moe_prefix, "mlp"}

    def __call__(self, name: str) -> Target | None:
        name = name.removeprefix("model.")
        m = re.fullmatch(r"layers\.(\d+)\.([a-z_]+)\.(.+)", name)
        if m is None:
            return Target(name)  # embed_tokens, norm, lm_head
        layer, module, rest = int(m.group(1)), m.group(2), m.group(3)
        base = f"layers.{layer}"
        if module == "self_attn":
            proj = re.fullmatch(r"([qkv]_proj)\.(weight|bias)", rest)
            if proj:
                return Target(f"{base}.self_attn.qkv_proj.{proj.group(2)}", rows=self.qkv_rows[proj.group(1)])
            return Target(f"{base}.self_attn.{rest}")
        if module not in self.moe_prefixes:
            return Target(f"{base}.{module}.{rest}")
        return self._mlp(layer, f"{base}.mlp", rest)

    def _mlp(self, layer: int, base: str, rest: str) -> Target | None:
        is_moe = self.cfg.moe_layers[layer]
        inter = self.cfg.moe.intermediate_size if (is_moe and self.cfg.moe) else self.cfg.intermediate_size
        m = re.fullmatch(r"experts\.(\d+)\.(\w+)\.weight", rest)
        if m and is_moe:
            e, part = int(m.group(1)), self.expert_part.get(m.group(2))
            if part == "gate":
                return Target(f"{base}.w13", expert=e, rows=(0, inter))
            if part == "up":
                return Target(f"{base}.w13", expert=e, rows=(inter, 2 * inter))
            if part == "down":
                return Target(f"{base}.w2", expert=e)
            return None
        if rest == "experts.gate_up_proj" and is_moe:  # transformers >= 5 fused layout
            return Target(f"{base}.w13")
        if rest == "experts.down_proj" and is_moe:
            return Target(f"{base}.w2")
        if rest in ("gate.weight", "router.weight") and is_moe:
            return Target(f"{base}.gate.weight")
        m = re.fullmatch(r"(shared_expert\.)?(gate_proj|up_proj|down_proj)\.(weight|bias)", rest)
        if m:
            prefix = base + (".shared_expert" if m.group(1) else "")
            width = self.cfg.moe.shared_expert_intermediate_size if (m.group(1) and self.cfg.moe) else inter
            if m.group(2) == "down_proj":
                return Target(f"{prefix}.down_proj.{m.group(3)}")
            rows = (0, width) if m.group(2) == "gate_proj" else (width, 2 * width)
            return Target(f"{prefix}.gate_up_proj.{m.group(3)}", rows=rows)
        return Target(f"{base}.{rest}")


def _destination(params: dict[str, torch.Tensor], target: Target) -> torch.Tensor | None:
    dst = params.get(target.param)
    if dst is None:
        return None
    if target.expert is not None:
        if target.expert >= dst.shape[0]:
            return None
        dst = dst[target.expert]
    if target.rows is not None:
        dst = dst[target.rows[0] : target.rows[1]]
    return dst


def load_weights(model: DecoderForCausalLM, model_dir: Path) -> None:
    """Fill ``model`` (already on its device and dtype) from the checkpoint's shards."""
    mapper = _NameMapper(model.config)
    params = dict(model.named_parameters(remove_duplicate=False))
    written = {n: torch.zeros(p.shape[:1] or (1,), dtype=torch.int64) for n, p in params.items()}
    unexpected: list[str] = []
    for path in checkpoint_files(model_dir):
        try:
            handle = safe_open(str(path), framework="pt", device="cpu")
        except Exception as e:  # safetensors raises its own error types for bad headers
            raise CheckpointError(f"shard {path.name} cannot be read (truncated or corrupt?): {e}") from None
        with handle as f:
            for name in f.keys():
                if _IGNORED.match(name):
                    continue
                target = mapper(name)
                dst = _destination(params, target) if target else None
                if dst is None:
                    unexpected.append(name)
                    continue
                shape = tuple(f.get_slice(name).get_shape())
                if shape != tuple(dst.shape):
                    raise CheckpointError(
                        f"tensor {name} in {path.name} has shape {list(shape)} but the config implies "
                        f"{list(dst.shape)}"
                    )
                try:
                    tensor = f.get_tensor(name)
                except Exception as e:
                    raise CheckpointError(f"shard {path.name} is truncated or corrupt: reading {name} failed: {e}") from None
                with torch.no_grad():
                    dst.copy_(tensor)
                _mark(written[target.param], target, dst)
    if unexpected:
        shown = ", ".join(unexpected[:5]) + (f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else "")
        raise CheckpointError(f"checkpoint has tensors that {model.config.architecture} does not use: {shown}")
    _check_complete(model, params, written)


def _mark(counter: torch.Tensor, target: Target, dst: torch.Tensor) -> None:
    # Count written rows along dim 0 (or experts) so a missing piece is reported by name.
    if target.expert is not None:
        counter[target.expert] += dst.shape[0] if target.rows else 1
    elif target.rows is not None:
        counter[target.rows[0] : target.rows[1]] += 1
    else:
        counter += 1


def _check_complete(model: DecoderForCausalLM, params: dict[str, torch.Tensor], written: dict[str, torch.Tensor]) -> None:
    tied = model.config.tie_word_embeddings
    missing = []
    for name, count in written.items():
        if tied and name == "lm_head.weight":
            continue
        p = params[name]
        per_expert = p.dim() == 3  # stacked experts: rows per expert = p.shape[1] (or 1 for whole)
        if per_expert:
            ok = bool(((count == p.shape[1]) | (count == 1)).all())
        else:
            ok = bool((count == 1).all())
        if not ok:
            missing.append(name)
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise CheckpointError(f"checkpoint is missing weights (or has them twice): {shown}")


def load_model(
    model_dir: Path | None, cfg: ModelConfig, device: torch.device, dtype: torch.dtype,
    max_len: int | None = None, load_format: str = "auto", seed: int = 0,
) -> DecoderForCausalLM:
    """Build the model on the meta device, allocate it once on ``device`` and load it.

    ``load_format="dummy"`` fills random weights with calibrated routers instead of
    reading a checkpoint (:mod:`lynx.models.dummy`); ``model_dir`` may then be None.
    """
    if load_format == "auto":
        if model_dir is None:
            raise CheckpointError("a checkpoint directory is required unless load_format='dummy'")
        checkpoint_files(model_dir)  # fail on a missing shard before allocating anything
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device("meta"):
            model = DecoderForCausalLM(cfg, max_len)
    finally:
        torch.set_default_dtype(previous)
    model = model.to_empty(device=device)
    model.tie_weights()  # to_empty gives every parameter its own storage
    model.rotary.reset_tables()
    if load_format == "dummy":
        from lynx.models.dummy import init_dummy_weights

        init_dummy_weights(model, seed)
    else:
        assert model_dir is not None
        load_weights(model, model_dir)
    return model.eval().requires_grad_(False)
