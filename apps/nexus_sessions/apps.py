"""Django app config for sessions (label `nexus_sessions`: `sessions` is django.contrib.sessions)."""

from django.apps import AppConfig


class NexusSessionsConfig(AppConfig):
    name = "apps.nexus_sessions"
    label = "nexus_sessions"
