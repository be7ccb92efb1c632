"""Profiles that parse but describe a lab no hypervisor or guest can have: each is refused
with the file and the exact key, before anything is built."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from vmlab.errors import ProfileError
from vmlab.profile import MAX_MEMORY_MIB, load_profile
from vmlab.stages import builtin_stages, resolve_stages

GOOD = textwrap.dedent("""\
    name: good
    hypervisor: {kind: libvirt, uri: "qemu:///system"}
    install: {method: image}
    vm:
      nics:
        - {role: provider, network: user, subnet: 10.0.2.0/24, address: 10.0.2.15, gateway: 10.0.2.2}
        - {role: management, network: user, subnet: 192.168.70.0/24, address: 192.168.70.2}
    stages: [hosts]
    """)
PROVIDER = "{role: provider, network: user, subnet: 10.0.2.0/24, address: 10.0.2.15, gateway: 10.0.2.2}"
MANAGEMENT = "{role: management, network: user, subnet: 192.168.70.0/24, address: 192.168.70.2}"


def nics(provider: str = PROVIDER, management: str = MANAGEMENT):
    return lambda text: text.replace(PROVIDER, provider).replace(MANAGEMENT, management)


def replace(old: str, new: str):
    def breaker(text: str) -> str:
        assert old in text, old
        return text.replace(old, new)
    return breaker


def add(extra: str):
    return lambda text: text + extra


def vm_key(line: str):
    return replace("vm:\n", f"vm:\n  {line}\n")


def problem_lines(path: Path) -> list[str]:
    with pytest.raises(ProfileError) as info:
        load_profile(str(path))
    assert str(path) in info.value.message
    return info.value.problems


RULES = [
    # (what, how GOOD is broken, key path named, words of the problem)
    # item 3: package names reach mmdebstrap --include and a kickstart's %packages
    ("shell in an image package", replace("{method: image}", '{method: image, packages: ["vim; rm -rf /"]}'),
     "install.packages[0]", "not a Debian package name"),
    ("upper case Debian package", replace("{method: image}", "{method: image, packages: [vim, Vim]}"),
     "install.packages[1]", "not a Debian package name"),
    ("one-letter Debian package", replace("{method: image}", "{method: image, packages: [v]}"),
     "install.packages[0]", "at least 2 characters"),
    ("comma in an image package", replace("{method: image}", '{method: image, packages: ["vim,curl"]}'),
     "install.packages[0]", "not a Debian package name"),
    ("newline in a kickstart package", lambda t: t.replace("{method: image}", '{method: kickstart, packages: ["vim\\n%end\\n%post\\nrm -rf /"]}').replace("stages:", "platform: centos7\nstages:"),
     "install.packages[0]", "not a package name for a kickstart"),
    ("shell in a kickstart package", lambda t: t.replace("{method: image}", '{method: kickstart, packages: ["vim; rm -rf /"]}').replace("stages:", "platform: centos7\nstages:"),
     "install.packages[0]", "not a package name for a kickstart"),
    # item 8: NICs
    ("two NICs on the same subnet", nics(management=MANAGEMENT.replace("192.168.70.0/24, address: 192.168.70.2", "10.0.2.0/24, address: 10.0.2.16")),
     "vm.nics[1].subnet", "is the same as vm.nics[0].subnet 10.0.2.0/24"),
    ("overlapping subnets", nics(management=MANAGEMENT.replace("192.168.70.0/24, address: 192.168.70.2", "10.0.0.0/16, address: 10.0.9.2")),
     "vm.nics[1].subnet", "overlaps vm.nics[0].subnet 10.0.2.0/24"),
    ("the same MAC twice", nics(PROVIDER[:-1] + ", mac: 52:54:00:aa:bb:cc}", MANAGEMENT[:-1] + ", mac: 52:54:00:AA:BB:CC}"),
     "vm.nics[1].mac", "also vm.nics[0].mac"),
    ("multicast MAC", nics(PROVIDER[:-1] + ", mac: 01:00:5e:00:00:01}"),
     "vm.nics[0].mac", "multicast"),
    ("broadcast MAC", nics(PROVIDER[:-1] + ", mac: ff:ff:ff:ff:ff:ff}"),
     "vm.nics[0].mac", "multicast"),
    ("address is the network address", nics(management=MANAGEMENT.replace("address: 192.168.70.2", "address: 192.168.70.0")),
     "vm.nics[1].address", "network address of 192.168.70.0/24"),
    ("address is the broadcast address", nics(management=MANAGEMENT.replace("address: 192.168.70.2", "address: 192.168.70.255")),
     "vm.nics[1].address", "broadcast address of 192.168.70.0/24"),
    ("address is the gateway", nics(PROVIDER.replace("address: 10.0.2.15", "address: 10.0.2.2")),
     "vm.nics[0].address", "taken by the gateway"),
    ("gateway is the broadcast address", nics(PROVIDER.replace("gateway: 10.0.2.2", "gateway: 10.0.2.255")),
     "vm.nics[0].gateway", "broadcast address"),
    ("address is the hypervisor's on a nat network", nics(management="{role: management, network: isolated, subnet: 192.168.70.0/24, address: 192.168.70.1}"),
     "vm.nics[1].address", "the hypervisor's end of the network"),
    ("address outside its subnet", nics(management=MANAGEMENT.replace("address: 192.168.70.2", "address: 192.168.71.2")),
     "vm.nics[1].address", "not inside subnet"),
    ("/32 subnet", nics(management="{role: management, network: user, subnet: 192.168.70.2/32}"),
     "vm.nics[1].subnet", "no room"),
    ("/31 subnet", nics(management="{role: management, network: user, subnet: 192.168.70.2/31}"),
     "vm.nics[1].subnet", "no room"),
    ("network name with a slash", nics(management="{role: management, network: isolated, network_name: a/b, subnet: 192.168.70.0/24}"),
     "vm.nics[1].network_name", "not a safe name"),
    ("network name with ..", nics(management="{role: management, network: isolated, network_name: x..y, subnet: 192.168.70.0/24}"),
     "vm.nics[1].network_name", "not a safe name"),
    ("network name with a space on libvirt", nics(management="{role: management, network: isolated, network_name: my net, subnet: 192.168.70.0/24}"),
     "vm.nics[1].network_name", "not a safe name"),
    ("port group with a slash on vSphere", lambda t: nics(management="{role: management, network: isolated, network_name: ../x, subnet: 192.168.70.0/24}")(t).replace('{kind: libvirt, uri: "qemu:///system"}', "{kind: vsphere, host: vc.example.org, user: admin}"),
     "vm.nics[1].network_name", "not a safe port group name"),
    ("pool with a slash", replace('uri: "qemu:///system"}', 'uri: "qemu:///system", pool: ../../etc}'),
     "hypervisor.pool", "not a safe name"),
    ("pool with a space", replace('uri: "qemu:///system"}', 'uri: "qemu:///system", pool: "my pool"}'),
     "hypervisor.pool", "not a safe name"),
    # item 8: sizes and types
    ("memory no hypervisor can give", vm_key("memory_mib: 1000000000000"),
     "vm.memory_mib", f"less than or equal to {MAX_MEMORY_MIB}"),
    ("cpus: true", vm_key("cpus: true"), "vm.cpus", "valid integer"),
    ("cpus as a float", vm_key("cpus: 2.0"), "vm.cpus", "valid integer"),
    ("disk as a string", vm_key('disk_gib: "8"'), "vm.disk_gib", "valid integer"),
    ("reboot: 1", replace("stages: [hosts]", "stages: [{name: x, run: ['true'], reboot: 1}]"),
     "stages[0].reboot", "valid boolean"),
    ("SSH port 0", add("ssh: {port: 0}\n"), "ssh.port", "greater than or equal to 1"),
    ("SSH port 65536", add("ssh: {port: 65536}\n"), "ssh.port", "less than or equal to 65535"),
    ("SSH port true", add("ssh: {port: true}\n"), "ssh.port", "valid integer"),
    ("vSphere port 70000", replace('{kind: libvirt, uri: "qemu:///system"}', "{kind: vsphere, host: vc.example.org, user: admin, port: 70000}"),
     "hypervisor.port", "less than or equal to 65535"),
    ("malformed image sha256", add("openstack: {image_sha256: abc123}\n"),
     "openstack.image_sha256", "64 hexadecimal digits"),
    ("malformed ISO sha256", lambda t: t.replace("{method: image}", "{method: kickstart, iso_sha256: 'xyz'}").replace("stages:", "platform: centos7\nstages:"),
     "install.iso_sha256", "String should match pattern"),
    ("the same secret twice", add("secrets: [root, admin, root]\n"),
     "secrets[2]", "'root' is listed twice (also secrets[0])"),
    # item 8: platform x install x release
    ("centos7 with an image install", add("platform: centos7\n"),
     "install.method", "cannot make a centos7 guest"),
    ("debian12 with a kickstart install", replace("{method: image}", "{method: kickstart}"),
     "install.method", "cannot make a debian12 guest"),
    ("newton on debian12", add("openstack: {release: newton}\n"),
     "openstack.release", "not packaged for debian12"),
    ("zed on centos7", lambda t: t.replace("{method: image}", "{method: kickstart}") + "platform: centos7\nopenstack: {release: zed}\n",
     "openstack.release", "not packaged for centos7"),
    # item 8: one grammar for the profile's name
    ("name with a slash", replace("name: good", "name: a/b"), "name", "profile name 'a/b' is not valid"),
    ("name with ..", replace("name: good", "name: '..'"), "name", "profile name '..' is not valid"),
    ("name with a space", replace("name: good", "name: my lab"), "name", "is not valid"),
    ("name with upper case", replace("name: good", "name: Good"), "name", "lower-case"),
    ("name of 41 characters", replace("name: good", "name: " + "a" * 41), "name", "1 to 40"),
]


@pytest.mark.parametrize("what, breaker, key, words", RULES, ids=[rule[0] for rule in RULES])
def test_profile_rule_is_refused_naming_file_and_key(tmp_path, what, breaker, key, words):
    path = tmp_path / "broken.yaml"
    path.write_text(breaker(GOOD))
    problems = problem_lines(path)
    named = [p for p in problems if p.startswith(f"{path}: {key}: ")]
    assert named, problems
    assert any(words in p for p in named), named


def test_the_good_profile_and_the_shipped_ones_pass_the_rules(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    assert load_profile(str(path)).profile.name == "good"
    for name in ("demo", "newton-aio", "newton-aio-vsphere", "zed-aio-debian12"):
        load_profile(name)


@pytest.mark.parametrize("packages", [
    ["vim", "python3-openstackclient", "libapache2-mod-wsgi-py3", "g++", "libstdc++6", "0ad"],
])
def test_real_debian_package_names_are_accepted(tmp_path, packages):
    path = tmp_path / "p.yaml"
    path.write_text(GOOD.replace("{method: image}", "{method: image, packages: [%s]}" % ", ".join(packages)))
    assert load_profile(str(path)).profile.install.packages == tuple(packages)


def test_kickstart_package_lists_take_groups_and_exclusions(tmp_path):
    packages = ["@^minimal", "@core", "-firewalld", "python2-PyMySQL", "NetworkManager", "mod_wsgi"]
    path = tmp_path / "p.yaml"
    path.write_text(GOOD.replace("{method: image}", "{method: kickstart, packages: [%s]}" % ", ".join(
        repr(p) for p in packages)) + "platform: centos7\n")
    assert load_profile(str(path)).profile.install.packages == tuple(packages)


def test_vsphere_port_group_names_may_have_spaces(tmp_path):
    """ESXi's default port group is "VM Network": a vSphere profile must be able to use it."""
    loaded = load_profile("newton-aio-vsphere")
    assert loaded.profile.vm.nic("provider").network_name == "VM Network"


def test_a_sha256_is_kept_in_lower_case(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(GOOD + "openstack: {image_sha256: %s}\n" % ("AB" * 32))
    assert load_profile(str(path)).profile.openstack.image_sha256 == "ab" * 32


def test_openstack_release_defaults_to_the_platforms(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(GOOD)
    assert load_profile(str(path)).profile.openstack.release == "zed"
    assert load_profile("newton-aio").profile.openstack.release == "newton"


def test_a_rule_broken_in_a_base_profile_names_the_base(tmp_path):
    (tmp_path / "base.yaml").write_text(GOOD + "secrets: [db, db]\n")
    child = tmp_path / "child.yaml"
    child.write_text("extends: base\nname: child\n")
    with pytest.raises(ProfileError) as info:
        load_profile(str(child))
    assert f"{tmp_path / 'base.yaml'}: secrets[1]: secret 'db' is listed twice" in "\n".join(
        info.value.problems)


@pytest.mark.parametrize("builtin", ["hosts", "keystone", "memcached-config"])
def test_a_script_stage_named_like_a_builtin_stage_is_refused(tmp_path, builtin):
    assert builtin in builtin_stages()
    path = tmp_path / "p.yaml"
    path.write_text(GOOD.replace("stages: [hosts]",
                                 f"stages: [memcached-install, {{name: {builtin}, run: ['true']}}]"))
    with pytest.raises(ProfileError) as info:
        resolve_stages(load_profile(str(path)))
    assert info.value.problems == [
        f"{path}: stages[1].name: {builtin!r} is a built-in stage; give the script stage "
        "another name"]


def test_a_script_stage_from_a_base_profile_is_blamed_on_the_base(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(GOOD.replace("stages: [hosts]", "stages: [{name: hosts, run: ['true']}]"))
    child = tmp_path / "child.yaml"
    child.write_text("extends: base\nname: child\nvm: {cpus: 2}\n")
    with pytest.raises(ProfileError) as info:
        resolve_stages(load_profile(str(child)))
    assert info.value.problems[0].startswith(f"{base}: stages[0].name: 'hosts' is a built-in")


def test_plan_refuses_a_script_stage_that_replaces_a_builtin_with_exit_2(tmp_path, capsys):
    from vmlab.cli import main

    path = tmp_path / "p.yaml"
    path.write_text(GOOD.replace("stages: [hosts]", "stages: [{name: hosts, run: ['echo mine']}]"))
    with pytest.raises(SystemExit) as exit_info:
        main(["plan", "--profile", str(path)])
    out, err = capsys.readouterr()
    assert exit_info.value.code == 2
    assert f"{path}: stages[0].name: 'hosts' is a built-in stage" in err
    assert out == ""
