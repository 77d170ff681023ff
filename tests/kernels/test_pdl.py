"""Programmatic dependent launch switches and the dense-GEMM choice (CPU side; the device
side is checked by compiling for sm_90 in test_skinny_gemm.py and on the GPU by
scripts/gpu_pdl_check.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lynx.kernels.dense import dense_gemm_choice, dense_linear
from lynx.kernels.pdl import pdl_launch, pdl_mode
from lynx.kernels.skinny_gemm import prefetch_bytes


def test_pdl_never_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("0", "1"):
        monkeypatch.setenv("LYNX_PDL", value)
        assert pdl_mode(torch.device("cpu")) == 0
        assert pdl_launch(torch.device("cpu"), "norm") == {"PDL": 0, "launch_pdl": False}


def test_pdl_needs_sm90_and_is_on_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from lynx.kernels import pdl

    cuda = torch.device("cuda", 0)
    monkeypatch.setattr(pdl, "driver_version", lambda: 12080)
    monkeypatch.setattr(pdl, "interpreter_enabled", lambda: False)  # (this file may run under TRITON_INTERPRET=1)
    monkeypatch.delenv("LYNX_PDL", raising=False)
    monkeypatch.delenv("LYNX_PDL_WAIT_ONLY", raising=False)
    monkeypatch.setattr(pdl, "_capability", lambda device: (8, 0))
    assert pdl.pdl_mode(cuda) == 0
    assert pdl.pdl_launch(cuda, "moe") == {"PDL": 0, "launch_pdl": False}
    monkeypatch.setattr(pdl, "_capability", lambda device: (9, 0))
    assert pdl.pdl_mode(cuda) > 0  # the default
    # measured default: routing and norms wait without triggering early, the rest trigger
    assert {kind: pdl.pdl_launch(cuda, kind)["PDL"] for kind in pdl.KINDS} == {
        "norm": 2, "gemm": 1, "attention": 1, "rope": 1, "routing": 2, "moe": 1}
    assert all(pdl.pdl_launch(cuda, kind)["launch_pdl"] for kind in pdl.KINDS)
    monkeypatch.setenv("LYNX_PDL_WAIT_ONLY", "")  # every kind triggers early
    assert {pdl.pdl_launch(cuda, kind)["PDL"] for kind in pdl.KINDS} == {1}
    monkeypatch.setenv("LYNX_PDL_WAIT_ONLY", "moe")
    assert pdl.pdl_launch(cuda, "moe")["PDL"] == 2 and pdl.pdl_launch(cuda, "routing")["PDL"] == 1
    monkeypatch.setenv("LYNX_PDL_WAIT_ONLY", " moe , routing ")  # spaces are fine
    assert pdl.pdl_launch(cuda, "moe")["PDL"] == 2 and pdl.pdl_launch(cuda, "routing")["PDL"] == 2
    monkeypatch.setenv("LYNX_PDL_WAIT_ONLY", "mlp")
    with pytest.raises(ValueError, match="unknown kernel kinds"):
        pdl.pdl_launch(cuda, "moe")
    monkeypatch.delenv("LYNX_PDL_WAIT_ONLY", raising=False)
    with pytest.raises(ValueError, match="unknown kernel kind 'mlp'"):
        pdl.pdl_launch(cuda, "mlp")
    monkeypatch.setattr(pdl.torch.version, "hip", "6.2")  # ROCm: griddepcontrol is NVIDIA PTX
    assert pdl.pdl_mode(cuda) == 0
    monkeypatch.setattr(pdl.torch.version, "hip", None)
    monkeypatch.setattr(pdl, "driver_version", lambda: 12020)  # too old for PDL inside graph capture
    assert pdl.pdl_mode(cuda) == 0
    for version in (12040, None):  # new enough, or unknown (assumed current)
        monkeypatch.setattr(pdl, "driver_version", lambda v=version: v)
        assert pdl.pdl_mode(cuda) > 0
    monkeypatch.delenv("LYNX_PDL_WAIT_ONLY", raising=False)
    monkeypatch.setenv("LYNX_PDL", "wait")
    assert {pdl.pdl_launch(cuda, kind)["PDL"] for kind in pdl.KINDS} == {2}
    monkeypatch.setenv("LYNX_PDL", "0")
    assert pdl.pdl_mode(cuda) == 0
    assert pdl.pdl_launch(cuda, "gemm") == {"PDL": 0, "launch_pdl": False}
    monkeypatch.setenv("LYNX_PDL", "yes")
    with pytest.raises(ValueError, match="LYNX_PDL='yes'"):
        pdl.pdl_mode(cuda)


def test_dense_gemm_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LYNX_DENSE_GEMM", raising=False)
    assert dense_gemm_choice() == "cublas"  # auto: cuBLAS beat the skinny kernel, with or without PDL
    for forced in ("cublas", "skinny"):
        monkeypatch.setenv("LYNX_DENSE_GEMM", forced)
        assert dense_gemm_choice() == forced
    monkeypatch.setenv("LYNX_DENSE_GEMM", "cutlass")
    with pytest.raises(ValueError, match="LYNX_DENSE_GEMM='cutlass'"):
        dense_gemm_choice()
    monkeypatch.setenv("LYNX_DENSE_GEMM", "skinny: router, o_proj")  # per projection, for A/B runs
    assert [dense_gemm_choice(kind) for kind in ("qkv", "o_proj", "router", "mlp", None)] == \
        ["cublas", "skinny", "skinny", "cublas", "cublas"]
    for bad in ("skinny:", "skinny:lm_head", "cublas:router", "auto:qkv"):
        monkeypatch.setenv("LYNX_DENSE_GEMM", bad)
        with pytest.raises(ValueError, match="skinny:KIND"):
            dense_gemm_choice("qkv")
    monkeypatch.delenv("LYNX_DENSE_GEMM")
    with pytest.raises(ValueError, match="projection kind 'lm_head'"):
        dense_linear(torch.zeros(1, 4), torch.zeros(2, 4), kind="lm_head")


@pytest.mark.parametrize("choice", ["auto", "cublas", "skinny"])
def test_dense_linear_on_cpu_is_f_linear(monkeypatch: pytest.MonkeyPatch, choice: str) -> None:
    monkeypatch.setenv("LYNX_DENSE_GEMM", choice)
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(3, 16, generator=g), torch.randn(24, 16, generator=g), torch.randn(24, generator=g)
    assert torch.equal(dense_linear(x, w, b), F.linear(x, w, b))
    assert torch.equal(dense_linear(x, w), F.linear(x, w))


def test_prefetch_bytes_needs_16_byte_runs() -> None:
    w = torch.zeros(64, 2048 + 8, dtype=torch.bfloat16)
    assert prefetch_bytes(w[:, :2048]) == 2  # rows of 4096 bytes, stride 4112 bytes
    assert prefetch_bytes(w[:, 1:2049]) == 0  # rows start 2 bytes past 16-byte alignment
    assert prefetch_bytes(torch.zeros(8, 100, dtype=torch.bfloat16)) == 0  # 200-byte rows
    assert prefetch_bytes(torch.zeros(8, 100, dtype=torch.float32)) == 4  # 400-byte rows
    assert prefetch_bytes(torch.zeros(64, 2049, dtype=torch.bfloat16)[:, :2048]) == 0  # row stride 4098 bytes


def test_env_flags_are_0_or_1(monkeypatch: pytest.MonkeyPatch) -> None:
    from lynx.kernels.env_flags import env_flag

    monkeypatch.delenv("LYNX_TEST_FLAG", raising=False)
    assert env_flag("LYNX_TEST_FLAG", True) and not env_flag("LYNX_TEST_FLAG", False)
    for value, want in (("1", True), ("0", False), (" 1 ", True), ("", True)):
        monkeypatch.setenv("LYNX_TEST_FLAG", value)
        assert env_flag("LYNX_TEST_FLAG", True) is want
    monkeypatch.setenv("LYNX_TEST_FLAG", "false")
    with pytest.raises(ValueError, match="LYNX_TEST_FLAG='false': expected 1"):
        env_flag("LYNX_TEST_FLAG", True)


def test_every_kernel_launched_with_pdl_takes_it() -> None:
    """Triton's interpreter drops unknown launch keywords, so CPU runs would not notice a kernel
    that lost its ``PDL`` parameter; every ``pdl_launch`` call site's kernel must declare it."""
    import ast
    import importlib
    from pathlib import Path

    pytest.importorskip("triton")
    root = Path(importlib.import_module("lynx.kernels").__file__).parent
    launched: set[tuple[str, str]] = set()
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and any(
                    isinstance(k.value, ast.Call) and getattr(k.value.func, "id", "") == "pdl_launch"
                    for k in node.keywords if k.arg is None):
                if isinstance(node.func, ast.Subscript):  # kernel[grid](..., **pdl_launch(...))
                    launched.add((path.stem, ast.unparse(node.func.value)))
        for node in ast.walk(tree):  # launch keywords gathered in a dict first (the persistent MoE host)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Subscript) and any(
                    k.arg is None and isinstance(k.value, ast.Name) for k in node.keywords) and \
                    "pdl_launch" in path.read_text():
                launched.add((path.stem, ast.unparse(node.func.value)))
    assert len(launched) >= 14, launched
    modules = [importlib.import_module(f"lynx.kernels.{path.stem}") for path in sorted(root.glob("*.py"))
               if "@triton.jit" in path.read_text()]
    for module, name in sorted(launched):
        # the name as the launching module sees it (some import their kernel inside the function)
        head = name.split(".")[0]
        scope = next(vars(m) for m in [importlib.import_module(f"lynx.kernels.{module}"), *modules]
                     if head in vars(m))
        kernel = eval(name, scope)  # noqa: S307 (a name or attribute taken from our own source)
        assert "PDL" in kernel.arg_names, f"{module}: {name} is launched with PDL but has no PDL parameter"


def test_driver_version_query(monkeypatch: pytest.MonkeyPatch) -> None:
    import lynx.kernels.cuda_driver as cd

    class Driver:
        @staticmethod
        def cuDriverGetVersion(version: object) -> int:  # noqa: N802 (driver API name)
            version._obj.value = 12080  # ctypes.byref(...)._obj is the c_int
            return 0

    cd.driver_version.cache_clear()
    monkeypatch.setattr(cd, "libcuda", lambda: Driver())
    assert cd.driver_version() == 12080
    cd.driver_version.cache_clear()
    monkeypatch.setattr(cd, "libcuda", lambda: None)
    assert cd.driver_version() is None
    cd.driver_version.cache_clear()
