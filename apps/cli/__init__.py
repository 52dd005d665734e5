"""The CLI door: `manage.py nexus …` (installed as `nexus`), one module per command group."""
