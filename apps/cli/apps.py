"""Django app config for the CLI."""

from django.apps import AppConfig


class CliConfig(AppConfig):
    name = "apps.cli"
    label = "cli"
