"""The manual's "Environment" chapter: host preparation, networking, NTP, OpenStack packages.

Each function reads like the manual section it automates; where vmlab departs from the
manual it says so (see docs/newton-aio.md, "Errata").
"""
from __future__ import annotations

from vmlab.stages.base import Context, Stage, StageEnv

# -- prep: mirrors, updates, proxy, firewall and SELinux off, reboot -------------------------

#: The repo files of CentOS's release packages: centos-release (CentOS-Base.repo, ...) and
#: the SIGs' (CentOS-OpenStack-newton.repo, CentOS-Ceph-Jewel.repo, CentOS-QEMU-EV.repo).
STOCK_REPOS = "/etc/yum.repos.d/CentOS-*.repo"


def disable_stock_repos() -> str:
    """Disable every section of the stock repo files in place, their URLs commented out.

    rpm owns these files as %config(noreplace): one edited in place stays as it is when its
    package is upgraded (the package's new version is written as .rpmnew), while one that
    was moved away or deleted is put back, its dead mirrorlist enabled again. Idempotent.
    """
    return (f"for f in {STOCK_REPOS}; do [ -e \"$f\" ] || continue; "
            "sed -i -e '/^[[:space:]]*enabled[[:space:]]*=/d' "
            "-e 's/^[[:space:]]*\\(mirrorlist\\|baseurl\\)[[:space:]]*=/#vmlab-disabled: &/' "
            "-e 's/^\\[[^]]*\\]/&\\nenabled=0/' \"$f\"; done")


def only_vmlab_repos() -> str:
    """Fails when a repo file other than vmlab's still names a URL (an enabled stock repo)."""
    return ("! grep -E -l '^[[:space:]]*(mirrorlist|baseurl)[[:space:]]*=' "
            "$(ls /etc/yum.repos.d/*.repo | grep -v '/vmlab-') /dev/null")


def prepare_host(c: Context, env: StageEnv) -> None:
    p = env.platform
    if env.openstack.proxy:
        c.put(env.render("openstack/proxy.sh.j2"), "/etc/profile.d/proxy.sh")
    if p.name == "centos7":
        # Erratum: the manual's CentOS mirrors are gone; the vault (or the manual's aliyun
        # mirror, or a custom one) replaces the stock mirrorlist entries, which are disabled
        # in place so that no package upgrade brings them back.
        c.run(disable_stock_repos())
        c.put(env.render("openstack/centos-base.repo.j2"), "/etc/yum.repos.d/vmlab-base.repo")
        if env.openstack.proxy:
            c.run(f"grep -q '^proxy=' /etc/yum.conf || echo 'proxy={env.openstack.proxy}' "
                  ">> /etc/yum.conf")
        c.run("yum clean all")
    else:
        c.put(env.render("openstack/debian-sources.list.j2"), "/etc/apt/sources.list")
        if env.openstack.proxy:
            c.put(f'Acquire::http::Proxy "{env.openstack.proxy}";\n',
                  "/etc/apt/apt.conf.d/80proxy")
    if p.refresh_command:
        c.run(p.refresh_command)
    c.run(p.upgrade_command)
    if p.name == "centos7":
        # The upgrade updates centos-release; a repo file it adds is disabled too.
        c.run(disable_stock_repos())
    c.run(p.install("net-tools"))
    if p.has_firewalld:
        c.run("systemctl disable --now firewalld 2>/dev/null || true")
    if p.has_selinux:
        c.run("sed -i 's/^SELINUX=.*/SELINUX=disabled/' /etc/selinux/config")


def verify_prepared(c: Context, env: StageEnv) -> None:
    c.run("command -v netstat")
    if env.platform.name == "centos7":
        c.run(only_vmlab_repos())
    if env.platform.has_selinux:
        c.run("test \"$(getenforce)\" = Disabled")
    if env.platform.has_firewalld:
        c.run("! systemctl is-active --quiet firewalld")


# -- network: both NICs by MAC, /etc/hosts, DNS, reboot, name resolution ----------------------


def configure_network(c: Context, env: StageEnv) -> None:
    if env.platform.name == "centos7":
        # The manual's eno16777736/eno33554984 names depend on the hypervisor: match by MAC.
        for nic in env.nics:
            c.run(remove_other_ifcfg(nic["mac"], nic["role"]))
            c.put(env.render("openstack/ifcfg.j2", nic=nic), f"{IFCFG}/ifcfg-{nic['role']}")
    # Debian 12 guests get both NICs configured by MAC at every boot by vmlab's image seed;
    # verify_network checks the result the same way on both platforms.
    c.put(env.render("openstack/hosts.j2"), "/etc/hosts")
    if env.dns is not None:  # else the DHCP lease's servers stay (vSphere)
        c.put(env.render("openstack/resolv.conf.j2"), "/etc/resolv.conf")


IFCFG = "/etc/sysconfig/network-scripts"


def remove_other_ifcfg(mac: str, role: str) -> str:
    """Remove every ifcfg file but vmlab's for the NIC with ``mac``: the one named after its
    device, and any whose DEVICE, NAME or HWADDR names it. Anaconda writes ifcfg-<device>
    with DEVICE= and NAME= but usually no HWADDR=; left in place, it is a second profile
    for the same NIC (NetworkManager activates either)."""
    return (f"dev=$(grep -l -i -x '{mac}' /sys/class/net/*/address | head -n 1); "
            "dev=${dev%/address}; dev=${dev##*/}; "
            f"[ -n \"$dev\" ] || {{ echo 'no NIC has MAC {mac}' >&2; exit 1; }}; "
            f"for f in {IFCFG}/ifcfg-*; do "
            f"[ \"$f\" = {IFCFG}/ifcfg-{role} ] && continue; "
            f"if [ \"$f\" = \"{IFCFG}/ifcfg-$dev\" ] || grep -q -i -E "
            f"\"^(DEVICE|NAME)=[\\\"']?$dev[\\\"']?\\$|^HWADDR=[\\\"']?{mac}\" \"$f\"; "
            "then rm -f \"$f\"; fi; done")


def verify_network(c: Context, env: StageEnv) -> None:
    for nic in env.nics:
        if nic["address"]:
            c.run(f"ip -o -4 addr show | grep -i -q ' {nic['address']}/{nic['prefix']} '")
            c.run(f"ip -o link | grep -i -q 'link/ether {nic['mac']} '")
    c.run(f"getent hosts controller | grep -q '^{env.management_address} '")
    for server in env.dns or ():  # still there after the stage's reboot
        c.run(f"grep -q '^nameserver {server}$' /etc/resolv.conf")
    c.run("! grep -q '^127.0.1.1' /etc/hosts")
    if env.openstack.outside_host:
        c.run(f"getent hosts {env.openstack.outside_host}")


# -- ntp: chrony, allow the management subnet ---------------------------------------------


def install_chrony(c: Context, env: StageEnv) -> None:
    p = env.platform
    c.run(p.install("chrony"))
    c.put(env.render("openstack/chrony.conf.j2"), p.path("chrony.conf"))
    c.run(p.enable_and_start("chrony"))


def verify_chrony(c: Context, env: StageEnv) -> None:
    c.run(f"systemctl is-active --quiet {env.platform.service('chrony')}")
    c.run("chronyc sources")


# -- openstack-repos: the Newton repository, upgrade, the client -----------------------------


def install_openstack_packages(c: Context, env: StageEnv) -> None:
    p = env.platform
    if p.name == "centos7":
        # Erratum: the release package's mirrorlists no longer resolve. The release package
        # comes from the extras of the release that shipped it, with the Newton repository
        # disabled: the package lives there too, but that repository's key
        # (RPM-GPG-KEY-CentOS-SIG-Cloud) is on disk only once the package is installed.
        # Its repo files, and those of the Ceph Jewel and QEMU-EV SIG packages it requires,
        # point at mirror.centos.org and are disabled in place; vmlab's own file points
        # the Newton repository at the vault.
        c.put(env.render("openstack/centos-openstack.repo.j2"),
              "/etc/yum.repos.d/vmlab-openstack.repo")
        c.run(p.install("openstack-release",
                        disable_repos=(f"vmlab-openstack-{env.openstack.release}",)))
        c.run(disable_stock_repos())
        c.run("yum clean all")
    c.run(p.upgrade_command)
    if p.name == "centos7":
        c.run(disable_stock_repos())
    c.run(p.install("openstack-client"))


def verify_openstack_packages(c: Context, env: StageEnv) -> None:
    c.run("openstack --version")
    if env.platform.name == "centos7":
        c.run(only_vmlab_repos())


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
