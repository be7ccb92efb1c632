"""Golden files: compared exactly, regenerated with VMLAB_REGEN_GOLDEN=1."""
from __future__ import annotations

import os
from pathlib import Path

DATA = Path(__file__).parent / "data"


def check_golden(relative: str, text: str) -> None:
    path = DATA / relative
    if os.environ.get("VMLAB_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"{path} is missing; run with VMLAB_REGEN_GOLDEN=1"
    assert text == path.read_text(), f"{relative} differs from its golden file; " \
                                     "regenerate with VMLAB_REGEN_GOLDEN=1 if intended"
