"""Preseed installs: the preseed and its late script render and pass the installer's own
checks (debconf-set-selections --checkonly, sh -n), the install plan boots debian-installer's
netboot kernel with the install server's token URL, and the server serves what the
installer fetches."""
from __future__ import annotations

import subprocess
import textwrap
import urllib.request
from pathlib import Path

import pytest
from passlib.hash import sha512_crypt

from tests.mirror import serve, udeb_mirror
from vmlab import install
from vmlab.errors import InfrastructureError, KickstartError, ProfileError
from vmlab.preseed import (PreseedInputs, PreseedNic, Rendered, mask_secrets, render_preseed,
                           validate_preseed)
from vmlab.profile import load_profile
from vmlab.progress import QUIET

INPUTS = PreseedInputs(
    lab="t", hostname="controller",
    nics=(PreseedNic("provider", "52:54:00:00:00:01"),
          PreseedNic("management", "52:54:00:00:00:02", "192.168.70.2", 24)),
    root_password="Root-Pass-99", ssh_public_key="ssh-ed25519 AAAAkey vmlab-t",
    late_url="http://192.168.123.1:8719/token/late.sh",
    done_url="http://192.168.123.1:8719/token/done", dns=("192.168.123.1",),
    packages=("chrony",))


def answers(text: str) -> dict[str, tuple[str, str]]:
    """question -> (type, value), as debconf-set-selections reads the file."""
    found = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            _owner, question, kind, *value = line.split(None, 3)
            found[question] = (kind, value[0] if value else "")
    return found


def test_rendered_preseed_and_late_script_pass_the_installers_checks():
    rendered = render_preseed(INPUTS)
    validate_preseed(rendered)
    seen = answers(rendered.preseed)
    assert seen["netcfg/get_hostname"] == ("string", "controller")
    assert seen["mirror/http/hostname"] == ("string", "deb.debian.org")
    assert seen["mirror/suite"] == ("string", "bookworm")
    assert seen["pkgsel/include"] == ("string", "curl chrony")
    assert seen["debian-installer/exit/poweroff"] == ("boolean", "true")
    late = seen["preseed/late_command"][1]
    assert "wget -q -O /target/root/vmlab-late.sh http://192.168.123.1:8719/token/late.sh" in late


def test_root_password_is_only_a_sha512_hash_and_masked_when_shown():
    rendered = render_preseed(INPUTS)
    assert "Root-Pass-99" not in rendered.preseed + rendered.late_script
    kind, hashed = answers(rendered.preseed)["passwd/root-password-crypted"]
    assert kind == "password" and sha512_crypt.verify("Root-Pass-99", hashed)
    masked = mask_secrets(rendered.preseed, ["Root-Pass-99"])
    assert "$6$" not in masked
    assert "d-i passwd/root-password-crypted password ********" in masked


def test_late_script_installs_the_key_writes_the_nics_by_mac_and_calls_back():
    script = render_preseed(INPUTS).late_script
    assert "ssh-ed25519 AAAAkey vmlab-t\nVMLAB_KEY" in script
    assert 'chmod 0600 "$target/root/.ssh/authorized_keys"' in script
    assert "name=$(nic_by_mac 52:54:00:00:00:01)" in script
    provider = script[script.index("nic_by_mac 52:54:00:00:00:01"):
                      script.index("nic_by_mac 52:54:00:00:00:02")]
    assert 'echo "iface $name inet dhcp"' in provider
    assert 'echo "    address 192.168.70.2/24"' in script
    assert 'echo "nameserver 192.168.123.1" >> "$target/etc/resolv.conf"' in script
    assert "make_resolv_conf() { :; }" in script  # the DHCP lease keeps them
    assert "echo 'nohook resolv.conf' >> \"$target/etc/dhcpcd.conf\"" in script
    assert ('chroot "$target" curl -fsS -m 10 -X POST '
            '"http://192.168.123.1:8719/token/done" && exit 0') in script


def run_late_script(tmp_path: Path, inputs: PreseedInputs, runs: int = 1,
                    dhcpcd_conf: str | None = None) -> Path:
    """The late script run by sh against a made-up /sys (its two NICs) and target, which
    it returns."""
    script = render_preseed(inputs).late_script
    sys_net = tmp_path / "sys/class/net"
    for name, mac in (("enp1s0", "52:54:00:00:00:01"), ("enp2s0", "52:54:00:00:00:02")):
        (sys_net / name).mkdir(parents=True)
        (sys_net / name / "address").write_text(mac + "\n")
    target = tmp_path / "target"
    (target / "etc/network").mkdir(parents=True)
    if dhcpcd_conf is not None:
        (target / "etc/dhcpcd.conf").write_text(dhcpcd_conf)
    (tmp_path / "late.sh").write_text(script.replace("/sys/class/net/", f"{sys_net}/"))
    for _ in range(runs):
        subprocess.run(["sh", str(tmp_path / "late.sh"), str(target)], check=True)
    return target


def test_late_script_keeps_the_name_servers_from_dhclient_and_dhcpcd_once(tmp_path):
    """Run twice: resolv.conf holds the lab's servers, the dhclient hook and dhcpcd's nohook
    line are there, the latter once."""
    target = run_late_script(tmp_path, PreseedInputs(**{**INPUTS.__dict__, "done_url": None}),
                             runs=2, dhcpcd_conf="option rapid_commit\n")
    assert (target / "etc/resolv.conf").read_text() == "nameserver 192.168.123.1\n"
    assert "make_resolv_conf() { :; }" in (
        target / "etc/dhcp/dhclient-enter-hooks.d/vmlab-keep-dns").read_text()
    assert (target / "etc/dhcpcd.conf").read_text() == \
        "option rapid_commit\nnohook resolv.conf\n"


def test_late_script_names_nics_as_the_running_installer_sees_them(tmp_path):
    """The script's MAC lookup: the interfaces file gets the names of the NICs with those
    MACs."""
    target = run_late_script(
        tmp_path, PreseedInputs(**{**INPUTS.__dict__, "done_url": None, "dns": ()}))
    interfaces = (target / "etc/network/interfaces").read_text()
    assert "auto enp1s0\niface enp1s0 inet dhcp" in interfaces
    assert "auto enp2s0\niface enp2s0 inet static\n    address 192.168.70.2/24" in interfaces
    assert (target / "root/.ssh/authorized_keys").read_text() == "ssh-ed25519 AAAAkey vmlab-t\n"
    assert oct((target / "root/.ssh/authorized_keys").stat().st_mode & 0o777) == "0o600"


def test_a_preseed_line_debconf_cannot_read_is_an_error_naming_it():
    rendered = render_preseed(INPUTS)
    broken = Rendered(rendered.preseed.replace("d-i clock-setup/ntp boolean false",
                                               "d-i clock-setup/ntp bool false"),
                      rendered.late_script)
    with pytest.raises(KickstartError, match="Unknown type bool, skipping line"):
        validate_preseed(broken)
    truncated = Rendered(rendered.preseed + "d-i partman/confirm\n", rendered.late_script)
    with pytest.raises(KickstartError, match="parse error on line"):
        validate_preseed(truncated)


def test_a_late_script_sh_cannot_parse_is_an_error():
    rendered = render_preseed(INPUTS)
    with pytest.raises(KickstartError, match="the late script"):
        validate_preseed(Rendered(rendered.preseed, rendered.late_script + "if then\n"))


# -- the install plan ------------------------------------------------------------------------

def preseed_profile(path: Path, netboot: Path, extra: str = "") -> Path:
    path.write_text(textwrap.dedent(f"""\
        extends: zed-aio-debian12
        name: {path.stem}
        install:
          method: preseed
          netboot_dir: {netboot}
          packages: [chrony]
        """) + extra)
    return path


USER_MODE_NICS = textwrap.dedent("""\
    vm:
      nics:
        - {role: provider, network: user, subnet: 10.0.2.0/24, address: 10.0.2.15, gateway: 10.0.2.2}
        - {role: management, network: user, subnet: 192.168.70.0/24, address: 192.168.70.2}
    """)


@pytest.fixture
def netboot(tmp_path):
    folder = tmp_path / "netboot"
    folder.mkdir()
    (folder / "linux").write_bytes(b"kernel")
    (folder / "initrd.gz").write_bytes(b"initrd")
    return folder


def test_install_plan_boots_the_netboot_kernel_with_the_token_url(tmp_path, netboot,
                                                                  monkeypatch):
    # user-mode NICs: the server listens on loopback, the guest sees the host as .2 (on
    # libvirt networks it listens on the network's address, which exists only in a lab)
    monkeypatch.setattr(install, "INSTALL_PORTS", range(18719, 18729))
    loaded = load_profile(str(preseed_profile(tmp_path / "pre.yaml", netboot, USER_MODE_NICS)))
    provider_mac = loaded.profile.vm.nic("provider").mac_for("pre")
    with install.prepare("pre", loaded, "ssh-ed25519 AAAAkey vmlab-pre\n",
                         {"root": "Root-Pass-99"}, QUIET) as prepared:
        server = prepared.server
        assert prepared.installer is loaded.profile.install and not prepared.cdroms
        boot = prepared.boot
        assert (boot.kernel, boot.initrd) == (netboot / "linux", netboot / "initrd.gz")
        options = boot.cmdline.split()
        url = f"http://10.0.2.2:{server.port}/{server.token}/preseed.cfg"
        assert options[:3] == ["auto=true", "priority=critical", f"url={url}"]
        assert f"netcfg/choose_interface={provider_mac}" in options
        assert "hostname=controller" in options and "console=ttyS0,115200n8" in options
        assert options[-2:] == ["---", "console=ttyS0,115200n8"]
        # what the installer fetches, from where the guest's loopback is the host's
        local = f"http://127.0.0.1:{server.port}/{server.token}"
        preseed = urllib.request.urlopen(f"{local}/preseed.cfg").read().decode()
        assert f"http://10.0.2.2:{server.port}/{server.token}/late.sh" in preseed
        late = urllib.request.urlopen(f"{local}/late.sh").read().decode()
        assert f'"http://10.0.2.2:{server.port}/{server.token}/done"' in late
        assert "address 10.0.2.15/24" in late and "gateway 10.0.2.2" in late
        assert not server.wait_done(0)
        urllib.request.urlopen(urllib.request.Request(f"{local}/done", method="POST"))
        assert server.wait_done(0)


def test_missing_netboot_files_name_the_debian_package(tmp_path):
    loaded = load_profile(str(preseed_profile(tmp_path / "pre.yaml", tmp_path / "none")))
    with pytest.raises(InfrastructureError) as info:
        with install.prepare("pre", loaded, "key", {"root": "x"}, QUIET):
            pass
    assert "debian-installer-12-netboot-amd64" in info.value.hint


def test_preseed_is_for_debian_on_libvirt_only(tmp_path, netboot):
    centos = preseed_profile(tmp_path / "c.yaml", netboot, "platform: centos7\n"
                             "openstack: {release: newton}\n")
    with pytest.raises(ProfileError) as info:
        load_profile(str(centos))
    assert "install method 'preseed' cannot make a centos7 guest" in str(info.value.problems)
    vsphere = preseed_profile(tmp_path / "v.yaml", netboot,
                              "hypervisor: {kind: vsphere, host: vc.example, user: u}\n")
    with pytest.raises(ProfileError) as info:
        load_profile(str(vsphere))
    assert "only libvirt can" in str(info.value.problems)


def test_preflight_says_whether_the_netboot_files_are_there(tmp_path, netboot):
    from vmlab.preflight import _netboot_files

    there = load_profile(str(preseed_profile(tmp_path / "a.yaml", netboot))).profile.install
    assert _netboot_files(there).status == "ok"
    missing = load_profile(str(preseed_profile(tmp_path / "b.yaml", tmp_path / "none")))
    check = _netboot_files(missing.profile.install)
    assert check.status == "fail" and "apt-get install debian-installer-12-netboot-amd64" \
        in check.fix


# -- the mirror holds what the installer downloads ------------------------------------------

def test_a_mirror_that_lists_installer_components_it_does_not_serve_fails_preflight(tmp_path):
    """As the caching mirror tests run behind does: the index lists apt-mirror-setup, the
    pool answers 404, and the installer would wait at its download dialog until timeout."""
    from vmlab.preflight.installer import ALWAYS_LOADED, check_components

    with serve(tmp_path / "mirror") as mirror:
        udeb_mirror(mirror, set(ALWAYS_LOADED) - {"apt-mirror-setup", "grub-installer"})
        check = check_components("components", mirror.url("debian"), "bookworm", 5, "fix it")
    assert check.status == "fail" and check.fix == "fix it"
    assert "listed but not served: pool/main/a/apt-mirror-setup/apt-mirror-setup_1.0_all" \
        ".udeb (HTTP 404), pool/main/g/grub-installer/" in check.detail
    assert "'Download installer components'" in check.detail


def test_a_mirror_serving_the_installer_components_passes(tmp_path):
    from vmlab.preflight.installer import ALWAYS_LOADED, check_components

    with serve(tmp_path / "mirror") as mirror:
        udeb_mirror(mirror, set(ALWAYS_LOADED))
        check = check_components("components", mirror.url("debian"), "bookworm", 5, "")
    assert check.status == "ok", check.detail
