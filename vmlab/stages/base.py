"""What a stage is: a name, install(c, env), verify(c, env) and whether it reboots.

A stage function receives only a context ``c`` (run commands, write files) and the
stage environment ``env`` (the profile, the lab's secrets, templates), so the same code
runs over SSH, against a plan recorder, or against a test double.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

import jinja2

from vmlab.profile import Profile


class CommandResult(Protocol):
    exit_code: int
    stdout: str
    stderr: str


class Context(Protocol):
    """The part of a remote session a stage may use."""

    def run(self, command: str, *, check: bool = True, env: Mapping[str, str] | None = None,
            input: str | None = None, timeout: float | None = None,
            hide: bool = False) -> CommandResult: ...

    def put(self, content: str | bytes, path: str, mode: int = 0o644) -> None: ...

    def exists(self, path: str) -> bool: ...


_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("vmlab", "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


@dataclass(frozen=True)
class StageEnv:
    """Everything a stage may know about the lab it runs in."""

    lab: str
    profile: Profile
    secrets: Mapping[str, str] = field(default_factory=dict)

    @property
    def hostname(self) -> str:
        return self.profile.vm.hostname

    @property
    def management_address(self) -> str:
        nic = self.profile.vm.nic("management") or self.profile.vm.nic("provider")
        assert nic is not None  # the profile model requires a provider NIC
        if nic.address is None:
            raise ValueError(f"the {nic.role} NIC has no static address in the profile")
        return str(nic.address)

    def render(self, template: str, **values: Any) -> str:
        """Render ``vmlab/templates/<template>`` with ``env`` and ``values``."""
        return _templates.get_template(template).render(env=self, **values)


StageFn = Callable[[Context, StageEnv], None]


def _nothing(c: Context, env: StageEnv) -> None:
    return None


@dataclass(frozen=True)
class Stage:
    name: str
    install: StageFn
    verify: StageFn = _nothing
    reboot: bool = False
    description: str = ""
