"""The stages: the built-in ones by name (the manual's chapters) and script stages from
profiles. The catalogue is in ``catalogue``, a stage's contract in ``base``; importing the
package loads neither until one of their names is asked for. The platform seam (the
distribution and release tables) is ``vmlab.platforms``."""
from __future__ import annotations

from typing import Any

_FROM = {"builtin_stages": "catalogue", "resolve_stages": "catalogue",
         "script_stage": "catalogue", "secret_variables": "catalogue",
         "STAGE_MODULES": "catalogue", "Context": "base", "Stage": "base", "StageEnv": "base"}
__all__ = sorted(_FROM)


def __getattr__(name: str) -> Any:
    if name not in _FROM:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{_FROM[name]}"), name)
