# kumo: `make up` runs the all-in-one cloud, `make test` runs the whole suite.
# Both install whatever is missing first (system packages with apt-get, Python with uv).

SHELL := /bin/bash
PYTHON ?= python3
UV := .tools/bin/uv
VENV := .venv
KUMO := $(VENV)/bin/kumo
STATE_DIR ?=
# pytest-xdist workers: tests that use the machine (guests, namespaces) share one worker,
# the in-process API tests spread over the rest.
PYTEST_WORKERS ?= 2
SYSTEM_PACKAGES := python3 python3-venv qemu-system-x86 qemu-utils dnsmasq-base dnsmasq-utils nftables \
	iproute2 busybox-static linux-image-amd64 dropbear-bin openssh-client postgresql-client \
	mariadb-client chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: up test lint compat bench system-deps python-deps clean web-assets ha-proof

# System packages: installed only when one is missing (dpkg knows).
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install -q uv

# Python dependencies from the lock file (uv.lock), into .venv, with their bytecode
# compiled: uv does not by default, and where PYTHONDONTWRITEBYTECODE is set (CI, agents'
# shells) every `kumo` command then compiled SQLAlchemy, pydantic and rich from source:
# 1.5-2 s of CPU per command (bench/README.md, "CLI start"). A no-op once compiled.
python-deps: $(UV)
	$(UV) sync --frozen --quiet --compile-bytecode

up: system-deps python-deps
	$(KUMO) $(if $(STATE_DIR),--state-dir $(STATE_DIR)) up

test: system-deps python-deps
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# Issue 16's proof of host failure handling: 20 freezes of a random host at random moments
# in one run (about 10 min; `make test` runs 5). KUMO_HA_SEED=N replays a run.
ha-proof: system-deps python-deps
	KUMO_HA_ROUNDS=20 $(VENV)/bin/pytest -p no:cacheprovider -s tests/e2e/test_ha_host_failure.py -k random_freezes

lint: python-deps
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

compat: system-deps python-deps
	compat/run $(COMPAT_ARGS)

bench: python-deps
	$(VENV)/bin/python bench/tokens.py
	$(VENV)/bin/python bench/servers.py $(BENCH_ARGS)

# The dashboard's front-end libraries, vendored from npm (web/package-lock.json) into
# src/kumo/web/static/vendor: only after changing web/package.json; the result is committed.
web-assets:
	web/vendor.sh

clean:
	rm -rf .venv .venv-tempest .venv-ansible .venv-oslo .tools .pytest_cache .mypy_cache .ruff_cache
