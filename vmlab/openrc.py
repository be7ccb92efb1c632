"""`vmlab openrc`: a lab user's OpenStack credentials, built from the lab's state and secrets
(the same template the keystone stage writes into the guest), without reading the profile."""
from __future__ import annotations

from vmlab.errors import StateError, UsageError
from vmlab.rendering import templates  # the stages' template environment: the same file
from vmlab.platforms import DISTROS, release
from vmlab.state import LabFiles

KEYSTONE = "keystone"


def openrc(files: LabFiles, user: str) -> str:
    """The openrc of OpenStack ``user`` (admin or demo) of the lab; it holds the password."""
    state = files.read()
    lab = files.lab
    stage_names = [record["name"] for record in state["stages"]]
    if KEYSTONE not in stage_names:
        raise UsageError(f"lab {lab!r} has no OpenStack: none of its stages "
                         f"({', '.join(stage_names) or 'none'}) is {KEYSTONE!r}",
                         hint="openrc is for a lab made from an OpenStack profile, e.g. "
                              "newton-aio or zed-aio-debian12")
    password = files.load_secrets().get(user)
    if password is None:
        raise UsageError(f"lab {lab!r} has no password for the OpenStack user {user!r}",
                         hint=f"its profile generates no {user!r} secret (its `secrets:` list)")
    distro = DISTROS.get(state["platform"] or "")
    if distro is None:
        raise StateError(f"the state of lab {lab!r} does not say which platform its guest "
                         "runs, so the Keystone address is unknown",
                         hint=f"rebuild the state from the hypervisor: vmlab recover --lab {lab} "
                              f"--profile {state['profile']}")
    # The state records the platform, not the release: its default release is the one its
    # profiles deploy (every distribution in the table packages one).
    urls = release(distro.releases[0]).keystone_urls()
    return templates.get_template("openstack/openrc.j2").render(
        env=None, user=user, project=user, password=password,
        auth_url=urls["admin" if user == "admin" else "public"])
