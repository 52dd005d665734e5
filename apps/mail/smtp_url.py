"""NEXUS_SMTP_URL read into Django's EMAIL_* settings; pure (the settings module imports it before any app loads).

    smtp://[user[:password]@]host[:port][?starttls=true&timeout=10&cafile=/ca.pem&certfile=…&keyfile=…]
    smtps://…   implicit TLS (RFC 8314), port 465 by default

django-environ's `email_url` reads `smtps://` as STARTTLS and passes unknown options on silently; here `smtps://`
means what mail servers mean by it, and a misspelt option is refused at start instead of being ignored. No error
message quotes the URL: it carries the password.
"""

from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

SCHEMES = {"smtp": 25, "smtps": 465}
OPTIONS = ("starttls", "timeout", "cafile", "certfile", "keyfile")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
MAX_TIMEOUT_S = 300


def _refuse(reason: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"NEXUS_SMTP_URL: {reason}")


def smtp_url_settings(url: str) -> dict:
    """The EMAIL_* settings `url` stands for (EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD,
    EMAIL_USE_TLS, EMAIL_USE_SSL, EMAIL_TIMEOUT, EMAIL_SSL_CERTFILE, EMAIL_SSL_KEYFILE, NEXUS_SMTP_CA_FILE);
    ImproperlyConfigured naming the part that is wrong, never the URL itself."""
    parts = urlsplit(url.strip())
    if parts.scheme not in SCHEMES:
        raise _refuse("the scheme must be smtp:// or smtps:// (implicit TLS)")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise _refuse("the port must be a number from 1 to 65535") from None
    if not host:
        raise _refuse("no host (smtp://host:port)")
    if parts.path not in ("", "/") or parts.fragment:
        raise _refuse("no path or fragment is allowed after the host")
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise _refuse("the options must be name=value pairs joined by '&'") from None
    unknown = sorted(set(query) - set(OPTIONS))
    if unknown:
        raise _refuse(f"unknown option {', '.join(unknown)} (known: {', '.join(OPTIONS)})")
    repeated = sorted(name for name, values in query.items() if len(values) > 1)
    if repeated:
        raise _refuse(f"option {', '.join(repeated)} given more than once")
    options = {name: values[0] for name, values in query.items()}

    starttls = options.get("starttls", "false").lower()
    if starttls not in _TRUE + _FALSE:
        raise _refuse("starttls must be true or false")
    use_tls = starttls in _TRUE
    use_ssl = parts.scheme == "smtps"
    if use_tls and use_ssl:
        raise _refuse("smtps:// is TLS from the first byte: starttls=true is for smtp:// only")
    timeout = options.get("timeout", "10")
    if not timeout.isdigit() or not 1 <= int(timeout) <= MAX_TIMEOUT_S:
        raise _refuse(f"timeout must be whole seconds from 1 to {MAX_TIMEOUT_S}")
    for name in ("cafile", "certfile", "keyfile"):
        if name in options and not options[name]:
            raise _refuse(f"{name} must be a file path")
    if "keyfile" in options and "certfile" not in options:
        raise _refuse("keyfile needs certfile (the client certificate)")
    if ("cafile" in options or "certfile" in options) and not (use_tls or use_ssl):
        raise _refuse("cafile and certfile apply to TLS: use smtps:// or starttls=true")
    return {
        "EMAIL_HOST": host,
        "EMAIL_PORT": port or SCHEMES[parts.scheme],
        "EMAIL_HOST_USER": unquote(parts.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parts.password or ""),
        "EMAIL_USE_TLS": use_tls,
        "EMAIL_USE_SSL": use_ssl,
        "EMAIL_TIMEOUT": int(timeout),
        "EMAIL_SSL_CERTFILE": options.get("certfile"),
        "EMAIL_SSL_KEYFILE": options.get("keyfile"),
        "NEXUS_SMTP_CA_FILE": options.get("cafile"),
    }
