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

# Two pytest-xdist workers: one runs the e2e tests (one group, in order: they mostly wait on the processes they
# start) while the other runs the unit and integration tests; each worker has its own test database and Redis
# database (tests/conftest.py, nexus_site/settings/test.py). `.venv/bin/pytest` alone still runs in one process.
test: lint
	DJANGO_SETTINGS_MODULE=nexus_site.settings.test $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest -n 2 --dist loadgroup

bench: setup
	bench/hello.sh
