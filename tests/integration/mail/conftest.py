"""Mail fixtures: a real SMTP server on loopback (aiosmtpd) that Django's SMTP backend sends to."""

import socket

import pytest


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

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture(scope="module")
def _smtp_server():
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture
def smtp(_smtp_server, settings):
    """The SMTP server, emptied, with the platform's mail going to it (not the local outbox, nor pytest-django's
    in-memory mailbox)."""
    settings.NEXUS_MAIL_TRANSPORT = "smtp"
    settings.EMAIL_BACKEND = "apps.mail.backends.SmtpBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = _smtp_server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    _smtp_server.messages.clear()
    return _smtp_server
