#!/usr/bin/env python
"""Django's command-line entry point for Nexus."""

import os
import sys


def main() -> None:
    from nexus_site.settings import settings_module

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module())
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
