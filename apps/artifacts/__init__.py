"""Artifacts: files produced by runs (charts, reports), stored in the tenant's schema and downloadable."""
