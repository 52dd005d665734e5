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

test: lint
	DJANGO_SETTINGS_MODULE=nexus_site.settings.test $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest

bench: setup
	bench/hello.sh
