"""`nexus app deliveries|redeliver`: registered on the `app` group by apps/cli/commands/apps.py."""


def register(app_verbs) -> None:
    """Add the delivery verbs to the `app` group's subparsers."""
