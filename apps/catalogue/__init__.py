"""The tool catalogue: what an agent of a tenant may call (platform tools and one tool per deployed workflow)."""
