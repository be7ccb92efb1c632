"""Where vmlab keeps things: the user's state, config and cache dirs (platformdirs)."""
from __future__ import annotations

from pathlib import Path

import platformdirs

APP = "vmlab"


def shipped_profiles_dir() -> Path:
    """The profiles/ folder that ships beside the package."""
    return Path(__file__).resolve().parent.parent / "profiles"


def user_profiles_dir() -> Path:
    return Path(platformdirs.user_config_dir(APP)) / "profiles"


def state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP))


def labs_dir() -> Path:
    return state_dir() / "labs"


def lab_dir(lab: str) -> Path:
    return labs_dir() / lab


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP))


def kickstart_templates_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "kickstart"
