"""Test helpers for LDAP: the test directory (LDIF) and a private slapd fixture."""
