"""The libvirt driver's reading half (what status, snapshots, ssh and ssh-config use) answers
as the full driver does; its one-look glance as the driver's calls one by one would."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.handmade_labs import RUNNING, SHUTOFF, node_file, vm_xml
from vmlab.drivers.base import Driver
from vmlab.drivers.libvirt import LibvirtDriver, LibvirtReader
from vmlab.errors import NotOwned


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return node_file(tmp_path / "node.xml",
                     vm_xml("up", ["a", "b", "complete"], state=RUNNING),
                     vm_xml("off", ["a"], state=SHUTOFF, forward=40023),
                     vm_xml("theirs", ["a"], state=RUNNING, owner="other").replace(
                         "<metadata>", "<!--").replace("</metadata>", "-->"))


@pytest.mark.parametrize("name", ["vmlab-up", "vmlab-off", "vmlab-gone"])
def test_glance_answers_as_the_drivers_calls_one_by_one(uri: str, name: str) -> None:
    with LibvirtReader(uri) as reader, LibvirtDriver(uri) as driver:
        seen = reader.glance(name, 22)
        assert seen == Driver.glance(driver, name, 22)  # find, state, snapshots, log, ssh
        assert seen == driver.glance(name, 22)
    if name == "vmlab-gone":
        assert seen is None
    else:
        assert seen is not None and seen.ref.lab == name.removeprefix("vmlab-")
        assert (seen.endpoint is not None) == (name == "vmlab-up")


def test_glance_refuses_a_vm_without_vmlabs_tag_as_the_driver_does(uri: str) -> None:
    with LibvirtReader(uri) as reader, LibvirtDriver(uri) as driver:
        with pytest.raises(NotOwned) as read:
            reader.glance("vmlab-theirs")
        with pytest.raises(NotOwned) as full:
            Driver.glance(driver, "vmlab-theirs")
    assert read.value.message == full.value.message


def test_the_reader_reads_as_the_driver(uri: str) -> None:
    with LibvirtReader(uri) as reader, LibvirtDriver(uri) as driver:
        ref = reader.find("vmlab-up")
        assert ref == driver.find("vmlab-up")
        assert reader.snapshot_list(ref) == driver.snapshot_list(ref)
        assert reader.ssh_endpoint(ref, 22) == driver.ssh_endpoint(ref, 22)
        assert reader.state(ref) == driver.state(ref)
