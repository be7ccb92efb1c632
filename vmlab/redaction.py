"""Secret values never reach a log, a report or the screen: they are masked."""
from __future__ import annotations

from typing import Iterable

MASK = "********"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by a mask (longest secrets first)."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
