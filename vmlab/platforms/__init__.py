"""The platform seam: typed tables of the guest distributions (``Distro``) and the OpenStack
releases (``Release``) the stages deploy. A stage asks them for names, paths and commands
and never compares a distribution's or a release's name; adding either is a record in
``distros`` or ``releases``, its templates and a profile.

Light on purpose (no pydantic, no jinja2): the profile model and `vmlab openrc` import it.
"""
from __future__ import annotations

from vmlab.platforms.distro import Distro
from vmlab.platforms.distros import DISTROS
from vmlab.platforms.releases import RELEASES, Release
from vmlab.platforms.roles import File, Pkg, Svc, Tpl


def distro(name: str) -> Distro:
    try:
        return DISTROS[name]
    except KeyError:
        raise KeyError(f"unknown platform {name!r}; vmlab has "
                       + ", ".join(sorted(DISTROS))) from None


def release(name: str) -> Release:
    try:
        return RELEASES[name]
    except KeyError:
        raise KeyError(f"unknown OpenStack release {name!r}; vmlab has "
                       + ", ".join(sorted(RELEASES))) from None


def shipped_pairs() -> list[tuple[Distro, Release]]:
    """Every (distribution, release) pair vmlab deploys: each release its distributions
    package."""
    return [(d, RELEASES[r]) for d in DISTROS.values() for r in d.releases]


__all__ = ["DISTROS", "RELEASES", "Distro", "File", "Pkg", "Release", "Svc", "Tpl", "distro",
           "release", "shipped_pairs"]
