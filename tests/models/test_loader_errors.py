"""Bad checkpoints and bad routing options fail with a clear message."""

from __future__ import annotations

import json
import shutil

import pytest
from safetensors.torch import load_file, save_file

from lynx import LLM
from lynx.errors import CheckpointError, LynxError, RoutingConfigError, UnsupportedArchitectureError


def copy_ckpt(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_directory_without_config(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        LLM(str(tmp_path), device="cpu")


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        LLM(str(tmp_path / "nope"), device="cpu")


def test_unsupported_architecture_lists_supported(checkpoint_factory, tmp_path):
    path = copy_ckpt(checkpoint_factory("qwen3-moe"), tmp_path / "c")
    cfg = json.loads((path / "config.json").read_text())
    cfg["architectures"] = ["GPTNeoXForCausalLM"]
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedArchitectureError, match="GPTNeoXForCausalLM.*Qwen3MoeForCausalLM"):
        LLM(str(path), device="cpu")


def test_missing_shard(checkpoint_factory, tmp_path):
    path = copy_ckpt(checkpoint_factory("qwen3-moe-sharded"), tmp_path / "c")
    shard = sorted(path.glob("model-*.safetensors"))[0]
    shard.unlink()
    with pytest.raises(CheckpointError, match=f"missing: {shard.name}"):
        LLM(str(path), device="cpu")


def test_truncated_shard(checkpoint_factory, tmp_path):
    path = copy_ckpt(checkpoint_factory("qwen3-moe"), tmp_path / "c")
    f = path / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors.*(truncated|corrupt)"):
        LLM(str(path), device="cpu")


def test_shape_disagrees_with_config(checkpoint_factory, tmp_path):
    path = copy_ckpt(checkpoint_factory("qwen3-moe"), tmp_path / "c")
    cfg = json.loads((path / "config.json").read_text())
    cfg["moe_intermediate_size"] = cfg["moe_intermediate_size"] * 2
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"experts\.0\..*has shape .* but the config implies"):
        LLM(str(path), device="cpu")


def test_missing_tensor(checkpoint_factory, tmp_path):
    path = copy_ckpt(checkpoint_factory("qwen3-moe"), tmp_path / "c")
    f = path / "model.safetensors"
    tensors = load_file(f)
    tensors = {k: v for k, v in tensors.items() if "layers.1.mlp.experts.3.up_proj" not in k}
    save_file(tensors, f, metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=r"missing weights.*layers\.1\.mlp\.w13"):
        LLM(str(path), device="cpu")


def test_unexpected_tensor(checkpoint_factory, tmp_path):
    path = copy_ckpt(checkpoint_factory("qwen3-moe"), tmp_path / "c")
    f = path / "model.safetensors"
    tensors = load_file(f)
    tensors["model.layers.0.mlp.bogus.weight"] = tensors["model.norm.weight"].clone()
    save_file(tensors, f, metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="does not use: model.layers.0.mlp.bogus.weight"):
        LLM(str(path), device="cpu")


def test_bin_weights_are_named(checkpoint_factory, tmp_path):
    path = copy_ckpt(checkpoint_factory("qwen3-moe"), tmp_path / "c")
    (path / "model.safetensors").rename(path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"pytorch_model.bin.*not supported"):
        LLM(str(path), device="cpu")


def test_unknown_routing_policy(checkpoint_factory):
    with pytest.raises(RoutingConfigError, match="unknown routing policy 'fancy'.*topk.*lynx.*oea"):
        LLM(str(checkpoint_factory("qwen3-moe")), routing="fancy", device="cpu")


def test_unknown_routing_parameter(checkpoint_factory):
    with pytest.raises(RoutingConfigError, match="gamma"):
        LLM(str(checkpoint_factory("qwen3-moe")), routing="lynx", gamma=3, device="cpu")


def test_bad_engine_option(checkpoint_factory):
    with pytest.raises(LynxError, match="dtype must be one of"):
        LLM(str(checkpoint_factory("qwen3-moe")), dtype="float8", device="cpu")


def test_overlap_decode_must_be_a_bool_or_none():
    from lynx.engine.config import EngineConfig

    with pytest.raises(LynxError, match="overlap_decode must be None, True or False"):
        EngineConfig(model="x", overlap_decode="yes")
    assert EngineConfig(model="x").overlap_decode is None  # auto: on for CUDA only
