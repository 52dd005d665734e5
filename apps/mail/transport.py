"""Where a tenant's mail goes: the local outbox (no mail server configured) or the configured server."""

from django.conf import settings

from apps.mail.models import LOCAL_OUTBOX

SMTP_BACKENDS = ("apps.mail.backends.SmtpBackend", "django.core.mail.backends.smtp.EmailBackend")


def mail_delivers() -> bool:
    """Whether messages go to a mail server (NEXUS_MAIL_TRANSPORT `smtp`) rather than only into the outbox."""
    return settings.NEXUS_MAIL_TRANSPORT == "smtp"


def mail_transport() -> str:
    """What a message's `delivered_to` says: "local outbox", the server as `smtp[s]://host:port` (never its
    credentials), or the dotted path of another Django email backend a settings module chose."""
    if not mail_delivers():
        return LOCAL_OUTBOX
    backend = settings.EMAIL_BACKEND
    if backend not in SMTP_BACKENDS:
        return backend
    host = settings.EMAIL_HOST
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return f"{'smtps' if settings.EMAIL_USE_SSL else 'smtp'}://{host}:{settings.EMAIL_PORT}"
