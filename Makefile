# vmlab: `make demo` and `make test` each do all set-up on a fresh Debian 12 machine (root).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CACHE := $(CURDIR)/.cache
STAMP := $(CACHE)/stamps
PYTEST_ARGS ?=
BENCH_VENV := $(CACHE)/bench-venv
BENCH_NOTE ?=

.PHONY: help deps venv demo demo-clean demo-netns test test-fast e2e-openstack e2e-install bench bench-venv bench-report vcsim clean

help:
	@echo "make demo           build a small Debian guest and run the demo lab on local libvirt/qemu"
	@echo "make demo-netns     the demo on libvirt NAT + isolated networks, in a network namespace"
	@echo "make test           install what the tests need and run them (about 12 minutes)"
	@echo "make test-fast      only the tests that need no VM"
	@echo "make e2e-openstack  deploy Keystone and Glance in a real guest (45 to 75 minutes without KVM);"
	@echo "                    PROFILE=epoxy-aio-debian13 for Debian 13 (default: zed-aio-debian12)"
	@echo "make e2e-install    a real debian-installer boot (5 min), then a preseed install of Debian 13 and prep,"
	@echo "                   network, ntp (30-60 min; VMLAB_E2E_MIRROR=host/dir: Debian 12 from a complete mirror)"
	@echo "make bench          benchmarks under bench/, written to docs/benchmarks.md (about 45 minutes)"

$(STAMP)/apt: scripts/install-deps
	scripts/install-deps
	@mkdir -p $(STAMP) && touch $@

deps: $(STAMP)/apt

$(BIN)/vmlab: setup.cfg pyproject.toml | $(STAMP)/apt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[libvirt,vsphere,dev]'
	@touch $@

venv: $(BIN)/vmlab

vcsim: $(STAMP)/apt
	tests/vsphere_sim/build.sh $(CACHE)/vcsim

demo: venv
	scripts/ensure-libvirtd
	$(BIN)/vmlab destroy --lab demo --yes 2>/dev/null || true
	$(BIN)/vmlab create --profile demo
	$(BIN)/vmlab status --lab demo
	@echo "== undo the last stage and run it again"
	$(BIN)/vmlab rollback memcached-config --lab demo
	$(BIN)/vmlab resume --lab demo
	$(BIN)/vmlab snapshots --lab demo
	@echo "The demo lab is running: 'vmlab ssh --lab demo' to log in, 'make demo-clean' to remove it."

demo-clean: venv
	$(BIN)/vmlab destroy --lab demo --yes

# For hosts where libvirt must not add bridges, dnsmasq or NAT rules: its own libvirtd in a
# network namespace (slirp4netns uplink), the demo-nat lab created, rolled back, resumed and
# destroyed there. `$(BIN)/python -m tests.netns_run -- bash` gives a shell inside.
demo-netns: venv
	$(BIN)/python -m tests.netns_run

# Two pytest runs side by side, each with its own guests (see scripts/run-tests).
test: venv vcsim
	VMLAB_TEST_CACHE=$(CACHE)/test VMLAB_VCSIM=$(CACHE)/vcsim/vcsim-vmlab \
	  $(BIN)/python scripts/run-tests $(PYTEST_ARGS)

test-fast: venv
	$(BIN)/pytest -p no:cacheprovider -m "not e2e" $(PYTEST_ARGS)

# The profile e2e-openstack deploys: any shipped OpenStack profile on libvirt
# (zed-aio-debian12, epoxy-aio-debian13).
PROFILE ?= zed-aio-debian12

e2e-openstack: venv
	@# its own --basetemp: a pytest run started meanwhile would prune the shared one, lab state and all
	VMLAB_TEST_CACHE=$(CACHE)/test VMLAB_E2E_PROFILE=$(PROFILE) $(BIN)/pytest -p no:cacheprovider -m openstack -s \
	  --basetemp=$(CACHE)/e2e-openstack-tmp tests/test_e2e_openstack.py

e2e-install: venv
	@# its own --basetemp, as e2e-openstack: a pytest run started meanwhile would prune the shared one
	VMLAB_TEST_CACHE=$(CACHE)/test $(BIN)/pytest -p no:cacheprovider -m install -s \
	  --basetemp=$(CACHE)/e2e-install-tmp tests/test_e2e_install.py

# The tools vmlab is compared with live in their own venv, never in vmlab's.
$(BENCH_VENV)/bin/kcli:
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q kcli ansible-core
	@touch $@

bench-venv: $(BENCH_VENV)/bin/kcli

# One VM at a time; each script prints its table and saves it for bench/report.py.
bench: venv bench-venv
	scripts/ensure-libvirtd
	@# the OpenStack rollback figure comes from `make e2e-openstack` and is kept
	find $(CACHE)/bench/results -name '*.json' ! -name rollback_ratio_openstack.json -delete 2>/dev/null || true
	$(BIN)/python bench/cli_start.py
	$(BIN)/python bench/lab_commands.py
	$(BIN)/python bench/remote_commands.py
	$(BIN)/python bench/snapshot_overhead.py
	$(BIN)/python bench/rollback_ratio.py --mode live
	$(BIN)/python bench/rollback_ratio.py --mode offline
	$(BIN)/python bench/rebuild_ratio.py
	$(BIN)/python bench/reapply_ratio.py
	$(MAKE) --no-print-directory bench-report

bench-report: venv
	$(BIN)/python bench/report.py --note "$(BENCH_NOTE)"

clean:
	rm -rf $(VENV) $(CACHE) *.egg-info
