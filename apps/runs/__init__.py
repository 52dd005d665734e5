"""Runs: executions of a pinned workflow version, on any channel, inline or on a Celery worker."""
