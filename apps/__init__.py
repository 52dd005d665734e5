"""Nexus Django apps: one per concern, plus one per channel ("door")."""
