"""newton-aio, checked by construction: the plan, every config file through its parser,
the kickstart through pykickstart, the install and final domains on libvirt's test driver."""
from __future__ import annotations

import configparser
import xml.etree.ElementTree as ET

import libvirt
import pytest

from tests.golden import check_golden
from tests.libvirt_test_driver import record_uploads
from vmlab.drivers.base import DiskSpec, KernelBoot
from vmlab.drivers.libvirt import LibvirtDriver
from vmlab.install import kickstart_inputs
from vmlab.iso import install_boot_cmdline
from vmlab.kickstart import render_kickstart, validate_kickstart
from vmlab.plan import RecordingContext, format_plan, plan
from vmlab.profile import load_profile
from vmlab.stages import StageEnv, builtin_stages
from vmlab.vmspec import build_vm_spec

SECRETS = {name: f"pw-{name}-0123" for name in
           ("root", "admin", "demo", "rabbit", "keystone_db", "glance_db", "glance")}


@pytest.mark.parametrize("profile", ["newton-aio", "zed-aio-debian12", "epoxy-aio-debian13"])
def test_plan_matches_golden_file(profile):
    loaded = load_profile(profile)
    check_golden(f"plans/{profile}.txt", format_plan(profile, loaded, plan(profile, loaded)))


def test_the_plan_holds_no_secret_and_the_stages_are_the_manuals():
    loaded = load_profile("newton-aio")
    stages = plan("newton-aio", loaded)
    assert [s["stage"] for s in stages] == ["prep", "network", "ntp", "openstack-repos",
                                            "mariadb", "rabbitmq", "memcached", "keystone",
                                            "glance"]
    text = format_plan("newton-aio", loaded, stages)
    assert "<secret:keystone_db>" in text and "<secret:admin>" in text


def written_files(profile: str) -> dict[str, str]:
    loaded = load_profile(profile)
    env_files: dict[str, str] = {}
    for name in loaded.profile.stage_names:
        stage = builtin_stages()[name]
        env = StageEnv(lab="t", profile=loaded.profile, secrets=SECRETS,
                       host_files={n: "/x" for n in stage.host_files})
        context = RecordingContext()
        stage.install(context, env)
        env_files.update({s["write"]: s["content"] for s in context.steps if "write" in s})
    return env_files


def ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def test_keystone_conf_has_the_manuals_keys():
    conf = ini(written_files("newton-aio")["/etc/keystone/keystone.conf"])
    assert conf["database"]["connection"] == \
        "mysql+pymysql://keystone:pw-keystone_db-0123@controller/keystone"
    assert conf["token"]["provider"] == "fernet"


@pytest.mark.parametrize("name", ["/etc/glance/glance-api.conf", "/etc/glance/glance-registry.conf"])
def test_glance_confs_have_the_manuals_keys(name):
    conf = ini(written_files("newton-aio")[name])
    assert conf["database"]["connection"] == \
        "mysql+pymysql://glance:pw-glance_db-0123@controller/glance"
    auth = conf["keystone_authtoken"]
    assert auth["auth_uri"] == "http://controller:5000"
    assert auth["auth_url"] == "http://controller:35357"
    assert auth["memcached_servers"] == "controller:11211"
    assert (auth["auth_type"], auth["project_name"], auth["username"], auth["password"]) == (
        "password", "service", "glance", "pw-glance-0123")
    assert conf["paste_deploy"]["flavor"] == "keystone"
    if name.endswith("api.conf"):
        store = conf["glance_store"]
        assert (store["stores"], store["default_store"], store["filesystem_store_datadir"]) == (
            "file,http", "file", "/var/lib/glance/images/")


def test_mariadb_openstack_cnf_binds_the_management_address():
    conf = ini(written_files("newton-aio")["/etc/my.cnf.d/openstack.cnf"])["mysqld"]
    assert conf["bind-address"] == "192.168.70.2"
    assert (conf["default-storage-engine"], conf["innodb_file_per_table"], conf["max_connections"],
            conf["collation-server"], conf["character-set-server"]) == (
        "innodb", "on", "4096", "utf8_general_ci", "utf8")


def test_chrony_hosts_and_repos():
    files = written_files("newton-aio")
    chrony = files["/etc/chrony.conf"].splitlines()
    assert "server 0.centos.pool.ntp.org iburst" in chrony and "allow 192.168.70.0/24" in chrony
    hosts = [line.split() for line in files["/etc/hosts"].splitlines()
             if line and not line.startswith("#")]
    names = {fields[1]: fields[0] for fields in hosts}
    assert names["controller"] == "192.168.70.2" and "compute1" in names and "object2" in names
    assert not any(fields[0] == "127.0.1.1" for fields in hosts)
    base = ini(files["/etc/yum.repos.d/vmlab-base.repo"])
    assert base["vmlab-os"]["baseurl"] == "http://vault.centos.org/7.9.2009/os/$basearch/"
    openstack = ini(files["/etc/yum.repos.d/vmlab-openstack.repo"])
    assert "openstack-newton" in openstack["vmlab-openstack-newton"]["baseurl"]
    ifcfg = files["/etc/sysconfig/network-scripts/ifcfg-management"]
    assert "IPADDR=192.168.70.2" in ifcfg and "HWADDR=" in ifcfg and "DEFROUTE=no" in ifcfg


def test_openrc_files_are_the_manuals():
    files = written_files("newton-aio")
    admin = files["/root/admin-openrc"]
    assert "export OS_AUTH_URL=http://controller:35357/v3/" in admin
    assert "export OS_PASSWORD='pw-admin-0123'" in admin
    assert "export OS_AUTH_URL=http://controller:5000/v3/" in files["/root/demo-openrc"]


def test_profile_kickstart_validates_with_rhel7():
    loaded = load_profile("newton-aio")
    text = render_kickstart(kickstart_inputs("newton-aio", loaded, "ssh-ed25519 AAAA k",
                                             SECRETS, "http://10.0.2.2:1/t/done"))
    validate_kickstart(text)
    assert "network --device=52:54:00:" in text and "--ip=192.168.70.2" in text


def test_install_boot_and_final_domain_are_built_up_front_on_the_test_driver(tmp_path,
                                                                             monkeypatch):
    """virt-install's way: the VM is defined as it stays (booting from disk, no ISO); its
    install boot runs the install definition once and leaves the final one defined."""
    uploads = record_uploads(monkeypatch)
    loaded = load_profile("newton-aio")
    node = tmp_path / "node.xml"
    node.write_text("<node></node>\n")
    kernel, initrd, iso = tmp_path / "vmlinuz", tmp_path / "initrd.img", tmp_path / "c7.iso"
    for path in (kernel, initrd, iso):
        path.write_bytes(b"x" * 1024)
    cmdline = install_boot_cmdline(ks_url="http://192.168.123.1:8000/t/ks.cfg",
                                   stage2="hd:LABEL=CentOS\\x207\\x20x86_64")
    spec = build_vm_spec("newton-aio", loaded.profile, disk=DiskSpec(20),
                         boot=KernelBoot(kernel, initrd, cmdline), cdroms=(iso,),
                         guest_os="centos7", install_once=True)
    with LibvirtDriver(f"test://{node}") as driver:
        ref = driver.create(spec)
        assert sorted(uploads) == [("c7.iso", "vmlab-newton-aio-cdrom0.iso"),
                                   ("initrd.img", "vmlab-newton-aio-initrd"),
                                   ("vmlinuz", "vmlab-newton-aio-vmlinuz")]
        domain = driver.conn.lookupByName(ref.name)

        def defined() -> ET.Element:
            return ET.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))

        def disks(root: ET.Element) -> list[str | None]:
            return [d.get("device") for d in root.findall("devices/disk")]

        final = defined()
        assert final.find("os/kernel") is None and final.find("os/cmdline") is None
        assert disks(final) == ["disk"]
        networks = {i.find("source").get("network") for i in final.findall("devices/interface")}
        assert networks == {"vmlab-provider", "vmlab-management"}
        management = driver.conn.networkLookupByName("vmlab-management").XMLDesc(0)
        assert "192.168.70.1" in management and "<forward" not in management

        driver.start_install(ref)
        running = ET.fromstring(domain.XMLDesc(0))  # the install boot, this run only
        assert running.findtext("os/cmdline") == cmdline
        assert running.findtext("os/kernel").endswith("vmlab-newton-aio-vmlinuz")
        assert disks(running) == ["disk", "cdrom"]
        assert ET.tostring(defined()) == ET.tostring(final)  # what the next boot runs
        driver.stop(ref, hard=True)
        driver.finish_install(ref)
        driver.start(ref)
        booted = ET.fromstring(domain.XMLDesc(0))
        assert booted.find("os/kernel") is None and disks(booted) == ["disk"]
        assert driver.find(ref.name).lab == "newton-aio"  # the ownership tag survives
        driver.destroy(ref)


def hosts_entries(text: str) -> list[tuple[str, str]]:
    return [(fields[1], fields[0]) for fields in
            (line.split() for line in text.splitlines() if line and not line.startswith("#"))]


@pytest.mark.parametrize("profile", ["newton-aio", "zed-aio-debian12"])
def test_hosts_file_is_the_manuals_all_in_one(profile):
    entries = dict(hosts_entries(written_files(profile)["/etc/hosts"]))
    for name in ("controller", "compute1", "block1", "object1", "object2"):
        assert entries[name] == "192.168.70.2", name


def test_hosts_named_in_the_profile_are_written_as_given(tmp_path):
    path = tmp_path / "nodes.yaml"
    path.write_text("extends: newton-aio\nopenstack:\n  hosts: {compute1: 192.168.70.31}\n")
    stages = {s["stage"]: s for s in plan("t", load_profile(str(path)))}
    hosts = next(s["content"] for s in stages["network"]["install"]
                 if s.get("write") == "/etc/hosts")
    assert hosts_entries(hosts)[-2:] == [("controller", "192.168.70.2"),
                                         ("compute1", "192.168.70.31")]
