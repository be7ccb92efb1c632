"""Connecting the vSphere driver: the registry, credentials, certificates and where in the
inventory it puts VMs, against the vSphere simulator (see tests/vsphere_fixtures.py)."""
from __future__ import annotations

import socket

import pytest

from tests.vsphere_helpers import open_driver, spec
from vmlab import drivers
from vmlab.drivers.vsphere import VsphereDriver
from vmlab.drivers.vsphere.session import wait_task
from vmlab.errors import DriverError, InfrastructureError


def test_the_registry_opens_the_driver(vcsim):
    with drivers.connect("vsphere", host=vcsim.host, port=vcsim.port, user=vcsim.user,
                         password=vcsim.password, insecure=True, datacenter="DC0",
                         cluster="DC0_C0", datastore="LocalDS_0") as driver:
        assert isinstance(driver, VsphereDriver)
        assert driver.host_system.name == "DC0_C0_H0"  # the cluster's only host
    driver.close()  # twice is fine


def test_bad_credentials_are_a_clear_error(vcsim):
    with pytest.raises(DriverError, match=f"refused the login of '{vcsim.user}'") as info:
        VsphereDriver(vcsim.host, vcsim.user, "wrong", port=vcsim.port, insecure=True)
    assert "password_env" in info.value.hint


def test_an_unreachable_host_is_a_clear_error():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(InfrastructureError, match=f"cannot reach vSphere at 127.0.0.1:{port}"):
        VsphereDriver("127.0.0.1", "user", "pass", port=port, insecure=True)


def test_an_untrusted_certificate_is_refused_by_default(vcsim):
    with pytest.raises(InfrastructureError, match="not trusted") as info:
        VsphereDriver(vcsim.host, vcsim.user, vcsim.password, port=vcsim.port)
    assert "insecure: true" in info.value.hint


@pytest.mark.parametrize("options, message, existing", [
    ({"datastore": "nope"}, "no datastore named 'nope' on host 'DC0_H0'", "LocalDS_0"),
    ({"datacenter": "DC9"}, "no datacenter named 'DC9'", "DC0"),
    ({"cluster": "C9", "host_system": None}, "no cluster named 'C9'", "DC0_C0"),
    ({"host_system": "H9"}, "no host named 'H9'", "DC0_C0_H0, DC0_H0"),
    ({"host_system": None}, "there are 2 hosts in datacenter 'DC0' to choose from",
     "DC0_C0_H0, DC0_H0"),
    ({"folder": "nope"}, "no VM folder 'nope' in datacenter 'DC0'", "none"),
])
def test_missing_inventory_names_what_exists(vcsim, options, message, existing):
    with pytest.raises(DriverError, match=message) as info:
        open_driver(vcsim, **options)
    assert existing in info.value.message
    assert "profile's hypervisor section" in info.value.hint


def test_a_vm_folder_by_name_or_path(driver, vcsim):
    labs = driver.datacenter.vmFolder.CreateFolder("labs")
    inner = labs.CreateFolder("vmlab-tests")
    try:
        for folder in ("labs/vmlab-tests", "vmlab-tests"):
            with open_driver(vcsim, folder=folder) as placed:
                assert placed.folder == inner
                ref = placed.create(spec())
                try:
                    vm, _ = placed._vm(ref)
                    assert vm.parent == inner
                finally:
                    placed.destroy(ref)
        with pytest.raises(DriverError, match="there are: labs, labs/vmlab-tests"):
            open_driver(vcsim, folder="labs/nope")
    finally:
        wait_task(labs.Destroy_Task(), "removing the test folders")
