"""Integration tests of accounts: login and JWTs, LDAP identity, users and members on the CLI."""
