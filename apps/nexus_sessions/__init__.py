"""Sessions: a conversation or end-user context that runs and events are bound to, in the tenant's schema."""
