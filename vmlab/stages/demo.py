"""The demo lab's stages: the shape of the OpenStack manual's environment sections, kept
short enough to run in a few minutes on a guest without KVM.

1. hosts             name resolution: `controller` on the management address
2. memcached-install install the memcached package
3. memcached-config  configure it to listen on the management address, restart, check it
"""
from __future__ import annotations

from vmlab.stages.base import Context, Stage, StageEnv

APT = "DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Options::=--force-confold"


def write_hosts(c: Context, env: StageEnv) -> None:
    """Edit /etc/hosts: the controller on its management address, no 127.0.1.1 line."""
    c.put(env.render("demo/hosts.j2"), "/etc/hosts")


def verify_hosts(c: Context, env: StageEnv) -> None:
    c.run(f"getent hosts {env.hostname} | grep -qx '{env.management_address} *{env.hostname}'")


def install_memcached(c: Context, env: StageEnv) -> None:
    c.run(f"{APT} update")
    c.run(f"{APT} install --no-install-recommends memcached")


def verify_memcached_installed(c: Context, env: StageEnv) -> None:
    c.run("dpkg-query -W -f='${Status}' memcached | grep -q 'install ok installed'")


def configure_memcached(c: Context, env: StageEnv) -> None:
    """Edit /etc/memcached.conf to listen on the management address, then restart."""
    c.put(env.render("demo/memcached.conf.j2"), "/etc/memcached.conf")
    c.run("systemctl enable memcached && systemctl restart memcached")


def verify_memcached_answers(c: Context, env: StageEnv) -> None:
    address = env.management_address
    c.run(f"for i in $(seq 50); do ss -ltn | grep -q '{address}:11211' && break; sleep 0.2; done;"
          f" ss -ltn | grep -q '{address}:11211'")
    c.run(f"exec 3<>/dev/tcp/{address}/11211 && printf 'version\\r\\n' >&3 && "
          "read -t 5 reply <&3 && echo \"$reply\" | grep -q '^VERSION '")


STAGES = [
    Stage("hosts", write_hosts, verify_hosts,
          description="name resolution of the controller on the management network"),
    Stage("memcached-install", install_memcached, verify_memcached_installed,
          description="install memcached"),
    Stage("memcached-config", configure_memcached, verify_memcached_answers,
          description="memcached on the management address, started and answering"),
]
