"""Secret values never reach a log, a report or the screen: they are masked."""
from __future__ import annotations

from typing import Iterable

MASK = "********"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by a mask (longest secrets first)."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def mask_lines(text: str, secrets: Iterable[str], prefix: str, masked: str) -> str:
    """``text`` redacted, and every line starting with ``prefix`` replaced by ``masked``
    (an installer's root password line: its hash is no secret value, yet not to be shown)."""
    return "".join(masked if line.startswith(prefix) else line
                   for line in redact(text, secrets).splitlines(keepends=True))
