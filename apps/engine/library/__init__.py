"""The node library beyond the core: HTTP, metrics, charts, datasets, email, events and subworkflows."""
