"""Mail fixtures: a real SMTP server on loopback (aiosmtpd) that Django's SMTP backend sends to."""

import socket

import pytest
from django.utils import timezone

from apps.ops.redis_client import redis_client
from apps.quotas.periods import period_key
from apps.quotas.services import mail_counter_key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpServer:
    """Keeps every message it receives: `messages` is a list of {"to": [...], "message": email.message.Message}."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages: list = []
        server = self

        class Handler:
            async def handle_DATA(self, smtp, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
                import email

                server.messages.append({"to": envelope.rcpt_tos, "message": email.message_from_bytes(envelope.content)})
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture(scope="module")
def smtp_server():
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server, settings):
    """The SMTP server, emptied, with the platform's mail going to it (not the local outbox, nor pytest-django's
    in-memory mailbox)."""
    settings.NEXUS_MAIL_TRANSPORT = "smtp"
    settings.EMAIL_BACKEND = "apps.mail.backends.SmtpBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    smtp_server.messages.clear()
    return smtp_server


@pytest.fixture
def fresh_quota(acme):
    """Today's mail counter of acme at 0 (sent-mail audit rows of earlier tests are committed: they would seed it)."""
    key = mail_counter_key(acme.pk, period_key(timezone.now(), "day"))
    redis_client().set(key, 0, ex=3600)
    yield key
    redis_client().delete(key)
