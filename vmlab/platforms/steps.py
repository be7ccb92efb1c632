"""What a distribution's methods hand back when one action is several commands and files:
steps a stage carries out in order (vmlab.stages.base.apply), so the tables stay data and
never touch a guest themselves."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Union


@dataclass(frozen=True)
class Run:
    """Run ``command``; ``input_template``, rendered, is its stdin."""

    command: str
    input_template: str | None = None


@dataclass(frozen=True)
class Put:
    """Write ``path``: the rendered ``template`` (with ``values``), or ``content``."""

    path: str
    template: str | None = None
    content: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    mode: int = 0o644

    def __post_init__(self) -> None:
        if (self.template is None) == (self.content is None):
            raise ValueError("a Put step has a template or content, not both or neither")


Step = Union[Run, Put]
