"""Rate limits: per credential and per tenant plan, counted in Redis so every node shares them (DESIGN §5)."""
