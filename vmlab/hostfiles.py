"""Files vmlab prepares on the host for a stage, e.g. the test image Glance uploads.

Prepared once, cached, then uploaded by the stage (``env.host_file(name)``): a guest never
downloads them itself, so a lab without outside access still gets them.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

from vmlab.errors import InfrastructureError, UsageError
from vmlab.profile import Profile

TEST_IMAGE_SIZE = "64M"


def prepare(names: tuple[str, ...], profile: Profile, cache_dir: Path,
            progress: Callable[[str], None]) -> dict[str, str]:
    """Local paths of the host files ``names`` (made or downloaded into ``cache_dir``)."""
    prepared: dict[str, str] = {}
    for name in names:
        if name == "image":
            prepared[name] = str(test_image(profile, cache_dir, progress))
        else:
            raise UsageError(f"a stage asks for an unknown host file {name!r}")
    return prepared


def test_image(profile: Profile, cache_dir: Path, progress: Callable[[str], None]) -> Path:
    settings = profile.openstack
    if settings.image_url:
        from vmlab.iso import fetch_iso

        return fetch_iso(settings.image_url, settings.image_sha256, cache_dir / "downloads",
                         progress)
    return small_qcow2(cache_dir / "images" / "glance-test.qcow2")


def small_qcow2(path: Path) -> Path:
    """A small empty qcow2 made with qemu-img: a real image for Glance to store."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    try:
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(partial), TEST_IMAGE_SIZE],
                       check=True, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise InfrastructureError("qemu-img is not installed",
                                  hint="install qemu-utils (make deps does)") from exc
    except subprocess.CalledProcessError as exc:
        raise InfrastructureError(f"qemu-img failed: {exc.stderr.strip()}") from exc
    partial.rename(path)
    return path
