"""Reports from rows a caller already holds: metrics, charts stored as artifacts, and emailed reports."""
