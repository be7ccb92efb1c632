"""The vSphere driver's snapshots against the vSphere simulator (see tests/vsphere_fixtures.py),
and the simulator's snapshot bugs that tests/vsphere_sim/*.patch fix."""
from __future__ import annotations

import pytest

from tests.vsphere_helpers import spec
from vmlab.drivers.base import PowerState
from vmlab.drivers.vsphere.session import wait_task
from vmlab.errors import NotFound, SnapshotExists


# -- the simulator's own bugs, fixed by tests/vsphere_sim/*.patch -----------------------------

def test_patch_unset_snapshot_property_reads_as_none(driver, vm):
    """02: reading vm.snapshot of a VM without snapshots crashed the simulator's Fetch."""
    machine, _ = driver._vm(vm)
    assert machine.snapshot is None
    driver.snapshot_create(vm, "base")
    driver.snapshot_delete(vm, "base")
    assert machine.snapshot is None  # unset again after the last one goes


def test_patch_snapshot_tasks_name_the_vm(driver, vm):
    """01: revert and remove tasks named the snapshot as their entity: unreadable by pyVmomi."""
    machine, _ = driver._vm(vm)
    driver.snapshot_create(vm, "base")
    node = machine.snapshot.rootSnapshotList[0]
    for task in (node.snapshot.RevertToSnapshot_Task(),
                 node.snapshot.RemoveSnapshot_Task(removeChildren=False)):
        wait_task(task, task.info.name)
        assert task.info.entity == machine and task.info.state == "success"


def test_patch_deleting_the_current_subtree_moves_current_up(driver, vm):
    """03: deleting keystone with its children while glance is current left current dangling."""
    for name in ("base", "keystone", "glance"):
        driver.snapshot_create(vm, name)
    driver.snapshot_delete(vm, "keystone", children=True)
    assert [(s.name, s.current) for s in driver.snapshot_list(vm)] == [("base", True)]


# -- snapshots --------------------------------------------------------------------------------

def test_a_live_snapshot_tree_reverts_to_the_nested_one_running(driver, vm):
    driver.start(vm)
    for name in ("base", "keystone", "glance"):
        taken = driver.snapshot_create(vm, name, f"before {name}", live=True)
        assert taken.state == PowerState.RUNNING and taken.current
    driver.stop(vm, hard=True)
    driver.snapshot_revert(vm, "keystone")
    assert driver.state(vm) == PowerState.RUNNING  # as it was when taken
    listed = driver.snapshot_list(vm)
    assert [(s.name, s.parent, s.current) for s in listed] == [
        ("base", None, False), ("keystone", "base", True), ("glance", "keystone", False)]
    assert [s.description for s in listed] == ["before base", "before keystone",
                                               "before glance"]
    assert listed[0].created <= listed[1].created <= listed[2].created
    assert listed[0].created.tzinfo is not None
    with pytest.raises(SnapshotExists):
        driver.snapshot_create(vm, "glance", live=True)
    driver.snapshot_delete(vm, "base", children=True)
    assert driver.snapshot_list(vm) == []


def test_reverting_to_a_stopped_snapshot_stops_the_vm(driver, vm):
    driver.snapshot_create(vm, "base")
    driver.start(vm)
    driver.snapshot_create(vm, "running", live=True)
    driver.snapshot_revert(vm, "base")
    assert driver.state(vm) == PowerState.SHUTOFF
    driver.snapshot_revert(vm, "running")
    assert driver.state(vm) == PowerState.RUNNING


def test_deleting_a_middle_snapshot_keeps_its_children(driver, vm):
    for name in ("base", "keystone", "glance"):
        driver.snapshot_create(vm, name)
    driver.snapshot_delete(vm, "keystone")
    assert [(s.name, s.parent) for s in driver.snapshot_list(vm)] == [
        ("base", None), ("glance", "base")]
    with pytest.raises(NotFound):
        driver.snapshot_revert(vm, "keystone")


def test_snapshots_go_with_their_vm(driver):
    """A VM with a snapshot tree is destroyed whole: nothing of it is found afterwards."""
    ref = driver.create(spec())
    driver.snapshot_create(ref, "base")
    driver.start(ref)
    driver.snapshot_create(ref, "running", live=True)
    driver.destroy(ref)
    assert driver.find(ref.name) is None
    with pytest.raises(NotFound):
        driver.snapshot_list(ref)
