"""Outbound email: the one service every door sends mail through (apps/mail/services.py)."""
