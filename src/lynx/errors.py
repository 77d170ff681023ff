"""Exceptions raised by Lynx for bad user input.

Every error a user can cause derives from :class:`LynxError`, so the CLI and the server
can print one clear line (or return one clear response) instead of a traceback.
"""

from __future__ import annotations


class LynxError(Exception):
    """Base class of all user-facing Lynx errors."""


class CheckpointError(LynxError):
    """The model directory is not a usable checkpoint (missing/corrupt files, bad shapes)."""


class UnsupportedArchitectureError(CheckpointError):
    """The checkpoint's ``architectures`` entry is not one Lynx implements."""


class RoutingConfigError(LynxError, ValueError):
    """Unknown routing policy or invalid routing parameter."""


class SamplingParamsError(LynxError, ValueError):
    """Invalid sampling parameters."""


class RequestError(LynxError, ValueError):
    """A request that can never be served (prompt too long, empty prompt, ...)."""
