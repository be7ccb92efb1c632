"""The driver contract, one suite for every driver.

A subclass provides the fixtures ``driver`` (an open Driver) and ``make_spec`` (a callable
returning a small VMSpec with a unique name), and hooks that go straight to the
hypervisor's API: ``make_untagged_vm(driver, name)`` creates a VM without vmlab's ownership
tag, ``objects_made_for(driver, spec)`` names what is there for a VM, tagged or not,
``ignore_graceful_stop(driver, ref)`` makes a running guest ignore a graceful shutdown, and
``dropped(driver)`` opens a second driver on the same hypervisor and drops its connection.
A driver's suite that leaves one out fails (not abc.abstractmethod: pytest silently does
not collect an abstract test class, so a forgotten hook would run no test at all); a
hypervisor that cannot show a behaviour skips, saying why.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from vmlab.drivers.base import PowerState
from vmlab.errors import (DriverError, InfrastructureError, NotOwned, SnapshotExists,
                          VmlabError, WaitTimeout)


class DriverContract:
    def make_untagged_vm(self, driver, name: str) -> None:
        """Create a VM named ``name`` through the hypervisor's API, without vmlab's tag."""
        pytest.fail(f"{type(self).__name__} does not define make_untagged_vm")

    def objects_made_for(self, driver, spec) -> set[str]:
        """The names of what the hypervisor holds for ``spec``'s VM, read from its own API
        (not from list_owned, so that an object left without its tag shows too): the VM,
        its disks and media, the networks or port groups made for its lab."""
        pytest.fail(f"{type(self).__name__} does not define objects_made_for")

    def ignore_graceful_stop(self, driver, ref) -> None:
        """Make the running VM ``ref`` ignore a graceful shutdown (ACPI, VMware tools)."""
        pytest.fail(f"{type(self).__name__} does not define ignore_graceful_stop")

    def dropped(self, driver):
        """A second driver on ``driver``'s hypervisor whose connection has been dropped
        (the daemon or the network went away): every call on it fails."""
        pytest.fail(f"{type(self).__name__} does not define dropped")

    def test_lifecycle_create_start_stop_destroy(self, driver, make_spec):
        spec = make_spec()
        ref = driver.create(spec)
        assert driver.find(spec.name) == ref
        made = self.objects_made_for(driver, spec)
        # the hook sees the VM and everything the driver reports as the lab's
        assert spec.name in made
        assert {o.name for o in driver.list_owned() if o.lab == spec.lab} <= made
        assert ref.lab == spec.lab
        assert driver.state(ref) == PowerState.SHUTOFF
        driver.start(ref)
        assert driver.state(ref) == PowerState.RUNNING
        driver.stop(ref, hard=True)
        assert driver.state(ref) == PowerState.SHUTOFF
        assert any(o.kind == "vm" and o.name == spec.name for o in driver.list_owned())
        driver.destroy(ref)
        assert driver.find(spec.name) is None
        assert not [o for o in driver.list_owned() if o.lab == spec.lab]
        assert self.objects_made_for(driver, spec) == set()

    def test_snapshot_tree_revert_nested_and_delete_with_children(self, driver, make_spec):
        spec = make_spec()
        ref = driver.create(spec)
        try:
            for name in ("base", "keystone", "glance"):
                driver.snapshot_create(ref, name, f"before {name}")
            snapshots = driver.snapshot_list(ref)
            assert [s.name for s in snapshots] == ["base", "keystone", "glance"]
            assert {s.name: s.parent for s in snapshots} == {
                "base": None, "keystone": "base", "glance": "keystone"}
            assert [s.name for s in snapshots if s.current] == ["glance"]
            driver.snapshot_revert(ref, "keystone")
            assert [s.name for s in driver.snapshot_list(ref) if s.current] == ["keystone"]
            assert driver.state(ref) == PowerState.SHUTOFF
            driver.snapshot_delete(ref, "keystone", children=True)
            assert [s.name for s in driver.snapshot_list(ref)] == ["base"]
        finally:
            driver.destroy(ref)

    def test_duplicate_snapshot_name_is_refused(self, driver, make_spec):
        ref = driver.create(make_spec())
        try:
            driver.snapshot_create(ref, "base")
            with pytest.raises(SnapshotExists):
                driver.snapshot_create(ref, "base")
            assert [s.name for s in driver.snapshot_list(ref)] == ["base"]
        finally:
            driver.destroy(ref)

    def test_untagged_vm_is_left_alone(self, driver, make_spec):
        name = make_spec().name
        self.make_untagged_vm(driver, name)
        ref = driver.find(name)
        assert ref is not None and ref.lab is None
        for action in (lambda: driver.start(ref), lambda: driver.destroy(ref),
                       lambda: driver.snapshot_create(ref, "x"),
                       lambda: driver.stop(ref, hard=True)):
            with pytest.raises(NotOwned):
                action()
        assert driver.find(name) is not None
        assert name not in [o.name for o in driver.list_owned()]

    def test_failed_create_leaves_nothing_behind(self, driver, make_spec):
        spec = make_spec()
        broken = dataclasses.replace(spec, cdroms=(Path("/nonexistent/install.iso"),))
        before = {(o.kind, o.name) for o in driver.list_owned()}
        with pytest.raises(VmlabError):
            driver.create(broken)
        assert driver.find(spec.name) is None
        assert {(o.kind, o.name) for o in driver.list_owned()} == before
        assert self.objects_made_for(driver, spec) == set()

    def test_a_create_failing_midway_removes_what_it_made(self, driver, make_spec, tmp_path):
        """Interrupted (Ctrl-C) in its first progress report, once the disk or port groups
        exist and an install medium is on its way: the create undoes all of it."""
        spec = make_spec()
        iso = tmp_path / "install.iso"
        iso.write_bytes(b"\0" * (1 << 20))

        def interrupt(message: str) -> None:
            raise KeyboardInterrupt(message)

        before = {(o.kind, o.name) for o in driver.list_owned()}
        with pytest.raises((KeyboardInterrupt, VmlabError)):
            driver.create(dataclasses.replace(spec, cdroms=(iso,)), progress=interrupt)
        assert driver.find(spec.name) is None
        assert {(o.kind, o.name) for o in driver.list_owned()} == before
        assert self.objects_made_for(driver, spec) == set()

    def test_a_graceful_stop_past_its_deadline_raises_and_leaves_the_vm_running(
            self, driver, make_spec):
        ref = driver.create(make_spec())
        try:
            driver.start(ref)
            self.ignore_graceful_stop(driver, ref)
            started = time.monotonic()
            with pytest.raises(WaitTimeout):
                driver.stop(ref, timeout=3)
            assert 3 <= time.monotonic() - started < 60
            assert driver.state(ref) == PowerState.RUNNING  # not powered off behind our back
            driver.stop(ref, hard=True)
            assert driver.state(ref) == PowerState.SHUTOFF
        finally:
            driver.destroy(ref)

    def test_a_live_snapshot_of_a_stopped_vm_is_refused_and_takes_nothing(self, driver,
                                                                          make_spec):
        ref = driver.create(make_spec())
        try:
            with pytest.raises(DriverError, match="live snapshot") as caught:
                driver.snapshot_create(ref, "live", live=True)
            assert "start it first" in caught.value.hint
            assert driver.snapshot_list(ref) == []
            assert driver.state(ref) == PowerState.SHUTOFF
        finally:
            driver.destroy(ref)

    def test_a_dropped_connection_is_an_infrastructure_error_with_a_hint(self, driver,
                                                                         make_spec):
        spec = make_spec()
        ref = driver.create(spec)
        try:
            lost = self.dropped(driver)
            calls = {"find": lambda: lost.find(spec.name), "state": lambda: lost.state(ref),
                     "start": lambda: lost.start(ref),
                     "snapshot_list": lambda: lost.snapshot_list(ref),
                     "list_owned": lost.list_owned, "create": lambda: lost.create(make_spec())}
            for name, call in calls.items():
                with pytest.raises(InfrastructureError) as caught:
                    call()
                assert caught.value.hint, f"{name}: {caught.value.message} has no hint"
            lost.close()  # closing what is already lost is no error
            assert driver.state(ref) == PowerState.SHUTOFF  # the VM is as it was
        finally:
            driver.destroy(ref)
