"""Built-in models: deterministic, cached atomically, real HF checkpoints that transformers runs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from lynx.embedded import (
    BUILTIN_MODELS,
    DEFAULT_MODEL,
    cache_root,
    is_builtin,
    resolve_model,
)
from lynx.embedded.materialize import COMPLETE_MARKER
from lynx.embedded.weights import BYTE_TOKEN_IDS

# Digest of the tensors (names, dtypes, shapes, bytes) of tiny-moe-v1 and tiny-dense-v1.
# The weights must be bit-identical on every machine; if this changes, either the recipe
# changed (bump BuiltinSpec.version) or generation is not portable (a bug).
PINNED_DIGESTS = {
    "tiny-moe": "dd6767e5ae397e240e92e16afff8448dbcfc89aa4741d5c8d924e20135757cb3",
    "tiny-dense": "53586924a5595855907418dbe8313485345e9f50c912acbf9e87c2379203d46b",
}

# The keys of the Hub's Qwen/Qwen3-30B-A3B config.json (minus transformers_version).
QWEN3_MOE_HUB_KEYS = {
    "architectures", "attention_bias", "attention_dropout", "bos_token_id", "decoder_sparse_step",
    "eos_token_id", "head_dim", "hidden_act", "hidden_size", "initializer_range",
    "intermediate_size", "max_position_embeddings", "max_window_layers", "mlp_only_layers",
    "model_type", "moe_intermediate_size", "norm_topk_prob", "num_attention_heads", "num_experts",
    "num_experts_per_tok", "num_hidden_layers", "num_key_value_heads", "output_router_logits",
    "rms_norm_eps", "rope_scaling", "rope_theta", "router_aux_loss_coef", "sliding_window",
    "tie_word_embeddings", "torch_dtype", "use_cache", "use_sliding_window", "vocab_size",
}  # fmt: skip


def _tensor_digest(model_dir: Path) -> str:
    h = hashlib.sha256()
    with safe_open(str(model_dir / "model.safetensors"), "pt") as st:
        for key in sorted(st.keys()):
            t = st.get_tensor(key)
            h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
            h.update(t.contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _file_digests(model_dir: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(model_dir.iterdir())}


@pytest.fixture(scope="module")
def moe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return resolve_model("tiny-moe", tmp_path_factory.mktemp("cache"))


def test_names() -> None:
    assert set(BUILTIN_MODELS) == {"tiny-moe", "tiny-dense"} and DEFAULT_MODEL == "tiny-moe"
    assert (
        is_builtin("tiny-moe")
        and not is_builtin("./tiny-moe")
        and not is_builtin("Qwen/Qwen3-30B-A3B")
    )


def test_paths_pass_through(tmp_path: Path) -> None:
    assert resolve_model(str(tmp_path / "ckpt")) == tmp_path / "ckpt"
    assert resolve_model("Qwen/Qwen3-30B-A3B") == Path("Qwen/Qwen3-30B-A3B")
    assert resolve_model(tmp_path) == tmp_path


@pytest.mark.parametrize("name", ["tiny-moe", "tiny-dense"])
def test_deterministic_across_cache_dirs(name: str, tmp_path: Path) -> None:
    a = resolve_model(name, tmp_path / "a")
    b = resolve_model(name, tmp_path / "b")
    assert a != b and a.name == b.name == f"{name}-{BUILTIN_MODELS[name].version}"
    assert _file_digests(a) == _file_digests(b)
    assert _tensor_digest(a) == PINNED_DIGESTS[name]


def test_resolve_is_idempotent_and_uses_lynx_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LYNX_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    first = resolve_model("tiny-dense")
    assert first == tmp_path / "models" / "tiny-dense-v1"
    stamps = {p.name: p.stat().st_mtime_ns for p in first.iterdir()}
    assert resolve_model("tiny-dense") == first
    assert {p.name: p.stat().st_mtime_ns for p in first.iterdir()} == stamps  # nothing rewritten
    assert sorted(os.listdir(first.parent)) == ["tiny-dense-v1"]  # no temporary leftovers


def test_concurrent_materialisation(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        paths = list(pool.map(lambda _: resolve_model("tiny-dense", tmp_path), range(3)))
    assert len(set(paths)) == 1 and (paths[0] / COMPLETE_MARKER).is_file()
    assert sorted(os.listdir(paths[0].parent)) == ["tiny-dense-v1"]


def test_concurrent_processes(tmp_path: Path) -> None:
    # Two interpreters race to materialise the same model into one cache.
    code = "from lynx.embedded import resolve_model; print(resolve_model('tiny-dense'))"
    env = {**os.environ, "LYNX_CACHE": str(tmp_path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs[0] == outputs[1] == str(tmp_path / "models" / "tiny-dense-v1")
    assert sorted(os.listdir(tmp_path / "models")) == ["tiny-dense-v1"]
    assert _tensor_digest(Path(outputs[0])) == PINNED_DIGESTS["tiny-dense"]


def test_incomplete_directory_is_rebuilt(tmp_path: Path) -> None:
    stale = tmp_path / "models" / "tiny-dense-v1"
    stale.mkdir(parents=True)
    (stale / "config.json").write_text("{}")
    path = resolve_model("tiny-dense", tmp_path)
    assert path == stale and (path / "model.safetensors").is_file()
    assert json.loads((path / "config.json").read_text())["model_type"] == "qwen3"


def test_config_is_hub_shaped(moe_dir: Path) -> None:
    config = json.loads((moe_dir / "config.json").read_text())
    assert set(config) == QWEN3_MOE_HUB_KEYS
    assert (
        config["architectures"] == ["Qwen3MoeForCausalLM"] and config["model_type"] == "qwen3_moe"
    )
    assert (
        config["num_experts"],
        config["num_experts_per_tok"],
        config["moe_intermediate_size"],
    ) == (32, 4, 128)
    assert config["norm_topk_prob"] is True and config["torch_dtype"] == "bfloat16"
    assert config["mlp_only_layers"] == [] and config["decoder_sparse_step"] == 1
    with safe_open(str(moe_dir / "model.safetensors"), "pt") as st:
        keys = set(st.keys())
        assert st.get_slice("model.layers.3.mlp.experts.31.down_proj.weight").get_shape() == [
            256,
            128,
        ]
    assert "model.layers.0.mlp.experts.0.gate_proj.weight" in keys and "lm_head.weight" in keys


def test_dense_counterpart_matches_active_parameters(tmp_path: Path, moe_dir: Path) -> None:
    moe = json.loads((moe_dir / "config.json").read_text())
    dense = json.loads((resolve_model("tiny-dense", tmp_path) / "config.json").read_text())
    assert dense["architectures"] == ["Qwen3ForCausalLM"]
    assert dense["intermediate_size"] == moe["num_experts_per_tok"] * moe["moe_intermediate_size"]
    shared = (
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "vocab_size",
    )
    assert all(dense[k] == moe[k] for k in shared)


def test_byte_token_ids_are_single_bytes(moe_dir: Path) -> None:
    vocab = json.loads((moe_dir / "tokenizer.json").read_text())["model"]["vocab"]
    by_id = {i: t for t, i in vocab.items()}
    assert all(len(by_id[i]) == 1 for i in BYTE_TOKEN_IDS)
    assert len(vocab) == 2048


def test_transformers_loads_and_generates_with_skewed_routing(moe_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lynx.testing.corpus import CORPUS

    model, info = AutoModelForCausalLM.from_pretrained(
        moe_dir, output_loading_info=True, dtype=torch.float32
    )
    assert {k: v for k, v in info.items() if v} == {}
    assert model.config.rope_parameters["rope_theta"] == 1_000_000.0
    tok = AutoTokenizer.from_pretrained(moe_dir)
    picks: list[torch.Tensor] = []
    probs: list[torch.Tensor] = []

    def hook(module, inputs, outputs) -> None:  # router returns (logits, weights, indices)
        if outputs[0].shape[0] == 16:  # decode steps of the 16-sequence batch
            picks.append(outputs[2])
            probs.append(outputs[0].float().softmax(-1).amax(-1))

    for layer in model.model.layers:
        layer.mlp.gate.register_forward_hook(hook)
    prompts = [line for line in CORPUS.splitlines() if len(line) > 30][::5][:16]
    enc = tok(prompts, return_tensors="pt", padding=True, padding_side="left")
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert out.shape[1] == enc.input_ids.shape[1] + 4
    touched = torch.tensor([float(p.unique().numel()) for p in picks])
    assert len(picks) == 3 * 4  # 3 decode steps x 4 layers
    assert touched.mean() < 22  # of 32; uniformly random top-4 routing touches ~28
    assert torch.cat(probs).mean() > 0.35  # confident: not near-uniform (1/32)


def test_transformers_runs_it_in_bfloat16(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(resolve_model("tiny-dense", tmp_path))
    assert model.dtype == torch.bfloat16  # torch_dtype of config.json
    with torch.no_grad():
        out = model.generate(
            torch.tensor([[5, 300, 1200]]), max_new_tokens=3, min_new_tokens=3, do_sample=False
        )
    assert out.shape == (1, 6)
