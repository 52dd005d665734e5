"""Who is asking: the authenticated principal handed by every channel to services and access checks."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller acting inside at most one tenant.

    `actor` is the stable string written on runs and audit rows (`user:alice`, `apikey:key_…`, `app:app_…`).
    `role` is the caller's role in `tenant_id`; platform admins may act in any tenant.
    """

    kind: str  # "user" | "api_key" | "application" (an API application's key or OAuth2 token) | "system"
    actor: str
    tenant_id: int | None
    tenant_slug: str | None
    role: str | None
    user_id: int | None = None
    api_key_id: str | None = None
    is_platform_admin: bool = False
    # Set when the credential belongs to an API application (apps/integrations): its id, the scopes that
    # narrow its role (None: no narrowing), and its own requests-per-minute limit (None: the plan's default).
    application_id: str | None = None
    scopes: frozenset[str] | None = None
    rate_limit_per_minute: int | None = None
