"""Who may read the operations figures: /metrics (every tenant's numbers) and the detailed /health."""

import hmac
import ipaddress

from django.conf import settings

from apps.accounts.access import require_metrics_read
from apps.accounts.selectors import principal_from_credential
from apps.core.errors import ApplicationError, NotAuthenticated
from apps.core.principal import Principal


def is_loopback(ip: str | None) -> bool:
    return ip is not None and ipaddress.ip_address(ip).is_loopback


def _loopback_allowed(ip: str | None) -> bool:
    return settings.NEXUS_METRICS_ALLOW_LOOPBACK and is_loopback(ip)


def metrics_access(*, credential: str, ip: str | None) -> None:
    """Raise unless the caller may read /metrics: NotAuthenticated (401) or PermissionDenied (403, audited).

    The figures span every tenant (tenant slugs label them), so a tenant's own credential is refused whatever
    its role; accepted are a platform admin's credential, the scrape token NEXUS_METRICS_TOKEN (Prometheus holds
    no Nexus credential), and, only when NEXUS_METRICS_ALLOW_LOOPBACK is on, a caller on this machine. `ip` is
    the client address the proxy forwarded (apps/audit/context.py), never the proxy's own loopback address.
    """
    if credential:
        token = settings.NEXUS_METRICS_TOKEN
        if token and hmac.compare_digest(credential.encode(), token.encode()):
            return
        try:
            principal, _ = principal_from_credential(credential)
        except ApplicationError as error:  # expired, revoked, suspended: all "not a credential here"
            raise NotAuthenticated(error.detail, code="not_authenticated") from None
        require_metrics_read(principal)
        return
    if not _loopback_allowed(ip):
        raise NotAuthenticated("authentication credentials were not provided", code="not_authenticated")


def health_detailed(*, principal: Principal | None, ip: str | None) -> bool:
    """Whether /health shows host names, pids, latencies, errors and worker names: to a platform admin's
    credential, or a caller on this machine (without credential) when NEXUS_METRICS_ALLOW_LOOPBACK is on."""
    if principal is not None:
        return principal.is_platform_admin
    return _loopback_allowed(ip)
