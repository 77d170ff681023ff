"""Helpers for running the Triton kernels on CPU in Triton's interpreter (tests, dry runs).

``TRITON_INTERPRET=1`` must be in the environment before any ``@triton.jit`` function is
defined (Triton decides at decoration time whether it builds a compiled or an interpreted
function), i.e. before ``lynx.kernels.triton_*`` is imported. Tests therefore run the
interpreter checks in a subprocess, and the GPU check script sets it before its imports.

Triton <= 3.6's interpreter converts loop bounds with ``int(ndarray_of_shape_1)``, which
numpy >= 2.4 rejects ("only 0-dimensional arrays can be converted to Python scalars";
triton-lang/triton#9171, fixed upstream by #9172). :func:`patch_interpreter` applies the
same one-line fix when the installed Triton still needs it. Its ``tl.dot`` also multiplies
bfloat16 operands as their raw uint16 bit patterns (bf16 is stored as uint16 there);
the patch widens bf16 operands to float32 first (exact). Never used on a GPU run.
"""

from __future__ import annotations

import os

import numpy as np


def interpreter_enabled() -> bool:
    """True if Triton will interpret (not compile) kernels defined from now on."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def use_interpreter(enabled: bool = True) -> None:
    """Interpret every ``@triton.jit`` function defined from now on, with :func:`patch_interpreter`
    (nothing if not ``enabled``, e.g. ``use_interpreter(args.dry_run)``).

    Call it before any ``lynx.kernels.triton_*`` import (CPU dry runs of the GPU scripts);
    child processes inherit the setting through the environment.
    """
    if not enabled:
        return
    os.environ["TRITON_INTERPRET"] = "1"
    patch_interpreter()


def _needs_index_patch() -> bool:
    try:
        int(np.array([1]))  # what the interpreter does with a scalar loop bound
    except TypeError:
        return True
    return False


def _bf16_to_f32(handle: object) -> object:
    """Interpreter tensor handle: bf16 (uint16 bits) -> float32 (exact), others unchanged."""
    import triton.language as tl
    from triton.runtime.interpreter import TensorHandle

    if handle.dtype != tl.bfloat16:  # type: ignore[attr-defined]
        return handle
    bits = handle.data.astype(np.uint32) << 16  # type: ignore[attr-defined]
    return TensorHandle(bits.view(np.float32), tl.float32)


def patch_interpreter() -> None:
    """Fix the two interpreter bugs above (idempotent; only call in interpreter mode)."""
    from triton.runtime import interpreter

    builder = interpreter.InterpreterBuilder
    if getattr(builder, "_lynx_patched", False):
        return
    builder._lynx_patched = True  # type: ignore[attr-defined]

    original_dot = builder.create_dot

    def create_dot(self: object, a: object, b: object, d: object, *args: object) -> object:
        return original_dot(self, _bf16_to_f32(a), _bf16_to_f32(b), d, *args)

    builder.create_dot = create_dot  # type: ignore[method-assign]

    if not _needs_index_patch():
        return
    original = interpreter._patch_lang_tensor

    def patched(tensor: object, scope: "interpreter._LangPatchScope") -> None:
        original(tensor, scope)
        # scalars are 1-element arrays in the interpreter: take the element explicitly
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    interpreter._patch_lang_tensor = patched
