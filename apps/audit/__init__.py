"""Audit: the append-only, hash-chained log of every mutating call, run, login and denial, in the public schema."""
