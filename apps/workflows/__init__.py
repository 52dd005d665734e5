"""Workflows: definitions, immutable versions, the template library and deployments per environment."""
