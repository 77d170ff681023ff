"""Interpreter-only speed-up for the MoE kernels' tests and dry runs (never used on a GPU).

The fused MoE metadata runs one ``tl.sort`` per GEMM program. Triton's CPU interpreter
executes ``tl.sort`` as its generic bitonic network of ``xor_sum`` reductions, which it
evaluates element by element in Python (~0.05-0.3 s per sort), so a test launching a
hundred programs spends minutes sorting. :func:`patch_interpreter_sort` makes the
interpreter's ``tl.sort`` a NumPy sort (same result: ascending, or descending, along the
last / given axis). The real ``tl.sort`` is what the GPU compiles; the sm_90 compile test
and ``lynx bench kernels`` (metadata exactness on the device) cover it.

Like :func:`lynx.kernels.triton_interpret.patch_interpreter`, call it only when
``TRITON_INTERPRET=1``.
"""

from __future__ import annotations

import numpy as np

_STATE = {"numpy": True}


def use_numpy_sort(enabled: bool) -> None:
    """Switch the patched interpreter between the NumPy sort and Triton's own ``tl.sort``."""
    _STATE["numpy"] = enabled


def patch_interpreter_sort() -> None:
    """Make ``tl.sort`` inside interpreted kernels a NumPy sort (idempotent)."""
    import triton.language as tl
    from triton.runtime import interpreter

    if getattr(interpreter, "_lynx_sort_patched", False):
        return
    interpreter._lynx_sort_patched = True  # type: ignore[attr-defined]

    def numpy_sort(x, dim=None, descending=False):  # noqa: ANN001, ANN202 - interpreter tensors
        axis = -1 if dim is None else int(getattr(dim, "value", dim))
        out = np.sort(x.handle.data, axis=axis, kind="stable")
        if bool(getattr(descending, "value", descending)):
            out = np.flip(out, axis=axis)
        return tl.core.tensor(interpreter.TensorHandle(np.ascontiguousarray(out), x.handle.dtype), x.type)

    original = interpreter._patch_lang_core

    def patched(lang, scope) -> None:  # noqa: ANN001
        original(lang, scope)
        if lang is tl and _STATE["numpy"]:
            scope.set_attr(lang, "sort", numpy_sort)

    interpreter._patch_lang_core = patched
