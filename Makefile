# Nexus: `make run` starts the platform, `make test` runs every test. Both set everything up first.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint format bench setup services

setup:
	@deploy/scripts/setup.sh
	@deploy/scripts/services.sh

run: setup
	$(BIN)/nexus up

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy apps

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Two pytest-xdist workers, each taking whole test files in the suite's order (unit, integration, e2e: fast
# failures first), so the e2e files, which mostly wait on the processes they start, run two at a time. Each worker
# has its own test database, Redis database and shared e2e installation (nexus_site/settings/test.py,
# tests/e2e/conftest.py). `.venv/bin/pytest` alone still runs in one process.
test: lint
	DJANGO_SETTINGS_MODULE=nexus_site.settings.test $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest -n 2 --dist loadfile --no-loadscope-reorder

bench: setup
	bench/hello.sh
