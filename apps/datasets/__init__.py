"""Datasets: tenant-owned tabular data (rows as JSONB) that workflows query read-only."""
