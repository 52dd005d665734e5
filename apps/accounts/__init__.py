"""Accounts: global users, per-tenant memberships with a role, hashed API keys, and the access checks."""
