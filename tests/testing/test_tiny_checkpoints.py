"""Tiny checkpoints: every variant saves, loads back in transformers and generates.

The key-layout tests pin what transformers writes (documented in
``lynx.testing.checkpoints``); if a transformers upgrade changes the format, they fail
and the loader has to be checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open

from lynx.testing import ARCHITECTURES, VARIANTS, build_tiny_checkpoint, build_variant
from lynx.testing.tokenizer import EOS_TOKEN_ID

PROMPT = "Question: what is the total on the invoice dated 14 March? Answer:"


def _keys(model_dir: Path) -> set[str]:
    keys: set[str] = set()
    for f in model_dir.glob("*.safetensors"):
        with safe_open(str(f), "pt") as st:
            keys.update(st.keys())
    return keys


def _load(model_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, info = AutoModelForCausalLM.from_pretrained(model_dir, output_loading_info=True)
    assert {k: v for k, v in info.items() if v} == {}, info
    return model.eval(), AutoTokenizer.from_pretrained(model_dir)


def _subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            _subset(v, actual.get(k)) for k, v in expected.items()
        )
    return expected == actual


def test_every_architecture_has_a_base_variant() -> None:
    assert {v["architecture"] for v in VARIANTS.values()} == set(ARCHITECTURES)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_builds_loads_and_generates(name: str, tmp_path: Path) -> None:
    spec = VARIANTS[name]
    out = build_variant(name, tmp_path)
    for f in (
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    ):
        assert (out / f).is_file(), f
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == [spec["architecture"]]
    assert config["eos_token_id"] == EOS_TOKEN_ID
    for key, value in spec.items():  # the detail the variant exists for reached config.json
        if key != "architecture":
            assert _subset(value, config[key]), (key, value, config[key])
    assert ("lm_head.weight" in _keys(out)) == (not config["tie_word_embeddings"])

    model, tok = _load(out)
    ids = tok(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits[0]
        gen = model.generate(ids, max_new_tokens=4, do_sample=False, min_new_tokens=4)
    assert gen.shape == (1, ids.shape[1] + 4)
    # Not degenerate (the point of lynx.testing.init): spread-out logits, clear winners.
    top2 = logits.float().topk(2, dim=-1).values
    assert logits.float().std() > 2.0
    assert (top2[:, 0] - top2[:, 1]).median() > 0.05


def test_moe_key_layout(tmp_path: Path) -> None:
    qwen3 = _keys(build_variant("qwen3-moe", tmp_path / "q3"))
    for part in ("gate_proj", "up_proj", "down_proj"):
        assert f"model.layers.1.mlp.experts.7.{part}.weight" in qwen3
    assert "model.layers.1.mlp.gate.weight" in qwen3
    assert "model.layers.0.self_attn.q_norm.weight" in qwen3
    assert not any("gate_up_proj" in k for k in qwen3)  # fused layout is in-memory only

    mixtral = _keys(build_variant("mixtral", tmp_path / "mx"))
    for w in ("w1", "w2", "w3"):
        assert f"model.layers.0.block_sparse_moe.experts.7.{w}.weight" in mixtral
    assert "model.layers.0.block_sparse_moe.gate.weight" in mixtral

    qwen2 = _keys(build_variant("qwen2-moe", tmp_path / "q2"))
    # decoder_sparse_step=2: layer 1 is sparse, layers 0 and 2 dense.
    assert "model.layers.1.mlp.shared_expert_gate.weight" in qwen2
    assert "model.layers.1.mlp.shared_expert.down_proj.weight" in qwen2
    assert "model.layers.0.mlp.gate_proj.weight" in qwen2
    assert not any(
        k.startswith(("model.layers.0.mlp.experts", "model.layers.2.mlp.experts")) for k in qwen2
    )
    assert "model.layers.0.self_attn.q_proj.bias" in qwen2


def test_config_spellings(tmp_path: Path) -> None:
    q3 = json.loads((build_variant("qwen3-moe", tmp_path / "a") / "config.json").read_text())
    assert q3["num_local_experts"] == 8 and "num_experts" not in q3  # transformers 5 spelling
    assert q3["rope_parameters"]["rope_theta"] == 1_000_000.0 and "rope_theta" not in q3
    assert q3["head_dim"] == 16 != q3["hidden_size"] // q3["num_attention_heads"]
    qs = json.loads((build_variant("qwen2-sliding", tmp_path / "b") / "config.json").read_text())
    assert qs["layer_types"] == ["full_attention", "sliding_attention", "sliding_attention"]


def test_sharded_save_writes_an_index(tmp_path: Path) -> None:
    out = build_tiny_checkpoint("Qwen3MoeForCausalLM", tmp_path, max_shard_size="30KB")
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(out.glob("model-*-of-*.safetensors"))
    assert len(shards) > 1 and not (out / "model.safetensors").exists()
    assert set(index["weight_map"].values()) == {s.name for s in shards}
    assert set(index["weight_map"]) == _keys(out)
    _load(out)


def test_same_seed_same_bytes_and_rng_untouched(tmp_path: Path) -> None:
    state = torch.get_rng_state()
    a = build_tiny_checkpoint("OlmoeForCausalLM", tmp_path / "a", seed=3)
    b = build_tiny_checkpoint("OlmoeForCausalLM", tmp_path / "b", seed=3)
    c = build_tiny_checkpoint("OlmoeForCausalLM", tmp_path / "c", seed=4)
    assert torch.equal(state, torch.get_rng_state())
    weights = [(p / "model.safetensors").read_bytes() for p in (a, b, c)]
    assert weights[0] == weights[1] != weights[2]


def test_dtype_and_overrides(tmp_path: Path) -> None:
    out = build_tiny_checkpoint(
        "LlamaForCausalLM", tmp_path, dtype="bfloat16", vocab_size=300, num_hidden_layers=1
    )
    config = json.loads((out / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and config["num_hidden_layers"] == 1
    with safe_open(str(out / "model.safetensors"), "pt") as st:
        assert st.get_tensor("model.embed_tokens.weight").dtype == torch.bfloat16
        assert st.get_slice("lm_head.weight").get_shape() == [300, 32]
    _, tok = _load(out)
    assert len(tok) == 300


def test_unknown_names_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown architecture"):
        build_tiny_checkpoint("GPT2LMHeadModel", tmp_path)
    with pytest.raises(ValueError, match="unknown variant"):
        build_variant("qwen9", tmp_path)
