"""The demo lab's stages: the shape of the OpenStack manual's environment sections, kept
short enough to run in a few minutes on a guest without KVM.

1. hosts             name resolution: `controller` on the management address
2. memcached-install install the memcached package
3. memcached-config  configure it to listen on the management address, restart, check it
"""
from __future__ import annotations

from vmlab.platforms import File, Pkg, Svc, Tpl
from vmlab.stages.base import Context, Stage, StageEnv
from vmlab.stages.infrastructure import verify_memcached



def write_hosts(c: Context, env: StageEnv) -> None:
    """Edit /etc/hosts: the controller on its management address, no 127.0.1.1 line."""
    c.put(env.render("demo/hosts.j2"), "/etc/hosts")


def verify_hosts(c: Context, env: StageEnv) -> None:
    c.run(f"getent hosts {env.hostname} | grep -qx '{env.management_address} *{env.hostname}'")


def install_memcached(c: Context, env: StageEnv) -> None:
    p = env.distro
    c.run(p.packaging.refresh())
    c.run(p.install(Pkg.MEMCACHED))


def verify_memcached_installed(c: Context, env: StageEnv) -> None:
    c.run(env.distro.installed(Pkg.MEMCACHED))


def configure_memcached(c: Context, env: StageEnv) -> None:
    """Edit the memcached configuration to listen on the management address, restart."""
    p = env.distro
    c.put(env.render(p.template(Tpl.MEMCACHED_CONF)), p.path(File.MEMCACHED_CONF))
    c.run(p.enable_and_start(Svc.MEMCACHED))


STAGES = [
    Stage("hosts", write_hosts, verify_hosts,
          description="name resolution of the controller on the management network"),
    Stage("memcached-install", install_memcached, verify_memcached_installed,
          description="install memcached"),
    Stage("memcached-config", configure_memcached, verify_memcached,
          description="memcached on the management address, started and answering"),
]
