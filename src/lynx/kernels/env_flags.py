"""On/off switches read from the environment (kernel fusions, launch modes).

Each is ``"1"`` (on) or ``"0"`` (off); unset or empty means its default. Anything else
raises, naming the variable, so that ``LYNX_MOE_PERSISTENT=false`` is never silently read
as "on". Read at each call (host side), so a CUDA graph keeps what it was captured with.
"""

from __future__ import annotations

import os


def env_flag(name: str, default: bool) -> bool:
    """The switch ``name``: ``"1"`` True, ``"0"`` False, unset/empty ``default``."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    if value not in ("0", "1"):
        raise ValueError(f"{name}={value!r}: expected 1 (on) or 0 (off)")
    return value == "1"
