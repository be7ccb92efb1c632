"""Where vmlab keeps things: the user's state, config and cache dirs (platformdirs)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import platformdirs

from vmlab.errors import NotFound, UsageError
from vmlab.names import LAB_NAME_RE, check_lab_name

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
    """A lab's own directory; a name outside the lab-name grammar is refused here too, the
    last line of defence for every path built from a lab's name."""
    return labs_dir() / check_lab_name(lab)


def runs_dir(lab: str) -> Path:
    """Where the nightly rebuilds of a lab keep their reports (beside, not inside, the lab)."""
    return state_dir() / "runs" / check_lab_name(lab)


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP))


def kickstart_templates_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "kickstart"


def home_id() -> str:
    """This vmlab state dir's identity, written into every tag: garbage collection only
    ever considers what this home made (other users share the same hypervisor)."""
    import uuid

    path = state_dir() / "home-id"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".home-id.{uuid.uuid4().hex}")
        tmp.write_text(uuid.uuid4().hex[:16] + "\n")
        try:
            os.link(tmp, path)  # first writer wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


def list_labs() -> list[str]:
    """Names of the labs that have a state file, readable or not (kept here: it must not
    import pydantic). A directory whose name vmlab could not have made is not a lab."""
    root = labs_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and re.fullmatch(LAB_NAME_RE, p.name)
                  and (p / "state.json").is_file())


def resolve_lab_name(given: str | None) -> str:
    """The lab a command acts on: the one named, or the only one there is."""
    if given is not None:
        return check_lab_name(given)
    labs = list_labs()
    if len(labs) == 1:
        return labs[0]
    if not labs:
        raise NotFound("there are no labs", hint="create one: vmlab create --profile demo")
    raise UsageError(f"there are {len(labs)} labs ({', '.join(labs)}); say which one",
                     hint=f"add --lab NAME, e.g. --lab {labs[0]}")
