"""Shared kernel: public ids, the domain error type and the principal every channel passes to services."""
