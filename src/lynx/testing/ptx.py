"""Checks on the PTX of kernels compiled ahead of time for sm_90 (no GPU needed)."""

from __future__ import annotations

MEMORY_OPS = ("ld.global", "st.global", "cp.async.cg", "cp.async.ca", "atom.", "red.")


def assert_pdl_waits_first(ptx: str, allowed_before: tuple[str, ...] = ()) -> None:
    """A kernel compiled with ``PDL=1`` may start while the previous kernel still runs: every
    entry point must trigger its dependents, then execute ``griddepcontrol.wait`` before any
    global memory access (``allowed_before``: instructions that may precede it, e.g. the
    skinny GEMM's L2 weight prefetch)."""
    body = ptx[ptx.index(".entry"):]
    assert body.count("griddepcontrol.wait") == 1, "expected exactly one griddepcontrol.wait"
    wait = body.index("griddepcontrol.wait")
    assert "griddepcontrol.launch_dependents" in body[:wait], "no early trigger before the wait"
    head = body[:wait]
    for op in allowed_before:
        head = head.replace(op, "")
    for op in MEMORY_OPS:
        assert op not in head, f"{op} before griddepcontrol.wait"
