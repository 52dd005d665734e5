"""The SSRF guard on webhook URLs, applied when an application's URL is set (and again by the sender).

A URL is accepted when it is an absolute http(s) URL whose host resolves only to public addresses, the same
judgement as the http_request node's (apps/core/netguard.py). Loopback, private,
link-local and other non-public addresses are refused unless NEXUS_WEBHOOK_ALLOW_PRIVATE is set. Checking at
registration gives the caller a clear 400 at once; it is not enough alone (a DNS answer may change later), so
the sender checks every address again and pins the connection to it (apps/integrations/outbound.py).
"""

import httpx
from django.conf import settings

from apps.core.errors import ValidationFailed
from apps.core.netguard import UnresolvableHost, first_blocked, resolve

MAX_URL_LENGTH = 2000
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _refused(reason: str, field: str) -> ValidationFailed:
    return ValidationFailed("invalid webhook URL", code="invalid_webhook_url", fields={field: reason})


def validate_webhook_url(url: str, *, field: str = "webhook_url") -> str:
    """Return `url` (stripped) if a webhook may be sent to it, else ValidationFailed naming `field` and why."""
    if not isinstance(url, str):
        raise _refused("a URL string", field)
    url = url.strip()
    if not url:
        raise _refused("required", field)
    if len(url) > MAX_URL_LENGTH:
        raise _refused(f"at most {MAX_URL_LENGTH} characters", field)
    if any(char.isspace() or ord(char) < 32 for char in url):
        raise _refused("must not contain spaces or control characters", field)
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
        port = parsed.port
    except (httpx.InvalidURL, ValueError, TypeError, UnicodeError) as error:
        raise _refused(f"not a valid URL: {error}", field) from None
    if parsed.scheme not in _DEFAULT_PORTS:
        raise _refused("must be an http:// or https:// URL", field)
    port = port or _DEFAULT_PORTS[parsed.scheme]
    if not host:
        raise _refused("must name a host", field)
    if parsed.userinfo:
        raise _refused("must not carry a user name or password", field)
    if parsed.fragment:
        raise _refused("must not have a #fragment", field)
    if settings.NEXUS_WEBHOOK_ALLOW_PRIVATE:
        return url
    try:
        blocked = first_blocked(resolve(host, port))
    except UnresolvableHost as error:
        raise _refused(f"{error}: the host must resolve", field) from None
    if blocked is not None:
        ip, reason = blocked
        shown = host if host == ip else f"{host} ({ip})"
        raise _refused(
            f"{shown} is a {reason} address; webhooks go to public addresses only (NEXUS_WEBHOOK_ALLOW_PRIVATE is off)",
            field,
        )
    return url
