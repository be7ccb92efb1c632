"""The manual's "Environment" chapter: host preparation, networking, NTP, OpenStack packages.

Each function reads like the manual section it automates; where vmlab departs from the
manual it says so (see docs/newton-aio.md, "Errata").
"""
from __future__ import annotations

from vmlab.platforms import File, Pkg, Svc
from vmlab.stages.base import Context, Stage, StageEnv, apply

# -- prep: mirrors, updates, proxy, firewall and SELinux off, reboot -------------------------


def prepare_host(c: Context, env: StageEnv) -> None:
    p = env.distro
    if env.openstack.proxy:
        c.put(env.render("openstack/proxy.sh.j2"), "/etc/profile.d/proxy.sh")
    apply(c, env, p.packaging.use_mirrors(env.openstack.proxy))
    c.run(p.packaging.refresh())
    apply(c, env, p.packaging.upgrade())
    c.run(p.install(Pkg.NET_TOOLS))
    if p.has_firewalld:
        c.run("systemctl disable --now firewalld 2>/dev/null || true")
    if p.has_selinux:
        c.run("sed -i 's/^SELINUX=.*/SELINUX=disabled/' /etc/selinux/config")


def verify_prepared(c: Context, env: StageEnv) -> None:
    p = env.distro
    c.run("command -v netstat")
    for command in p.packaging.verify_repos():
        c.run(command)
    if p.has_selinux:
        c.run("test \"$(getenforce)\" = Disabled")
    if p.has_firewalld:
        c.run("! systemctl is-active --quiet firewalld")


# -- network: both NICs by MAC, /etc/hosts, DNS, reboot, name resolution ----------------------


def configure_network(c: Context, env: StageEnv) -> None:
    for nic in env.nics:
        apply(c, env, env.distro.network.steps(nic))
    # verify_network checks the result the same way on every distribution.
    c.put(env.render("openstack/hosts.j2"), "/etc/hosts")
    if env.dns is not None:  # else the DHCP lease's servers stay (vSphere)
        c.put(env.render("openstack/resolv.conf.j2"), "/etc/resolv.conf")


def dhcp_lease_check(mac: str) -> str:
    """A command that fails unless the NIC with ``mac`` has an IPv4 address."""
    device = f"$(ip -o link | grep -i 'link/ether {mac} ' | cut -d: -f2 | tr -d ' ')"
    return f'ip -o -4 addr show dev "{device}" | grep -q " inet "'


def verify_network(c: Context, env: StageEnv) -> None:
    for nic in env.nics:
        if nic["address"]:
            c.run(f"ip -o -4 addr show | grep -i -q ' {nic['address']}/{nic['prefix']} '")
            c.run(f"ip -o link | grep -i -q 'link/ether {nic['mac']} '")
        else:  # DHCP (the manual's provider interface): a lease after the reboot
            c.run(dhcp_lease_check(nic["mac"]))
    c.run(f"getent hosts controller | grep -q '^{env.management_address} '")
    for server in env.dns or ():  # still there after the stage's reboot
        c.run(f"grep -q '^nameserver {server}$' /etc/resolv.conf")
    c.run("! grep -q '^127.0.1.1' /etc/hosts")
    if env.openstack.outside_host:
        c.run(f"getent hosts {env.openstack.outside_host}")


# -- ntp: chrony, allow the management subnet ---------------------------------------------


def install_chrony(c: Context, env: StageEnv) -> None:
    p = env.distro
    c.run(p.install(Pkg.CHRONY))
    c.put(env.render("openstack/chrony.conf.j2"), p.path(File.CHRONY_CONF))
    c.run(p.enable_and_start(Svc.CHRONY))


def verify_chrony(c: Context, env: StageEnv) -> None:
    c.run(f"systemctl is-active --quiet {env.distro.service(Svc.CHRONY)}")
    c.run("chronyc sources")


# -- openstack-repos: the release's repository, upgrade, the client --------------------------


def install_openstack_packages(c: Context, env: StageEnv) -> None:
    p = env.distro
    apply(c, env, p.openstack_repos.steps(p, env.release.name))
    apply(c, env, p.packaging.upgrade())
    c.run(p.install(Pkg.OPENSTACK_CLIENT))


def verify_openstack_packages(c: Context, env: StageEnv) -> None:
    c.run("openstack --version")
    for command in env.distro.packaging.verify_repos():
        c.run(command)


STAGES = [
    Stage("prep", prepare_host, verify_prepared, reboot=True,
          description="mirror, updates, net-tools, firewall and SELinux off, reboot"),
    Stage("network", configure_network, verify_network, reboot=True,
          description="both NICs by MAC, /etc/hosts, DNS, reboot, name resolution"),
    Stage("ntp", install_chrony, verify_chrony,
          description="chrony with the profile's servers, serving the management subnet"),
    Stage("openstack-repos", install_openstack_packages, verify_openstack_packages,
          description="the OpenStack repository, upgrade, the openstack client"),
]
