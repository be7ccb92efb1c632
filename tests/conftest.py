"""Shared fixtures. Fixture modules are registered here as plugins."""
pytest_plugins = ["tests.lab_harness", "tests.vsphere_fixtures", "tests.handmade_labs"]
