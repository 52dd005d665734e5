"""NEXUS_SMTP_URL against real TLS mail servers on loopback (aiosmtpd): STARTTLS with a login, implicit TLS
(smtps://), a server certificate checked against the given CA and refused without it, a wrong password refused;
a refusal is kept in the outbox as `failed` without the password."""

import datetime
import ipaddress
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.db import connection

from apps.mail.models import MailMessage
from apps.mail.services import MailFailed, mail_send_for_run
from apps.mail.smtp_url import smtp_url_settings

from .conftest import free_port

pytestmark = pytest.mark.django_db
PASSWORD = "s3cret-pass"  # noqa: S105 (a test server's)


def _certificate(subject: str, key, issuer_name, issuer_key, *, ca: bool):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and a server certificate for 127.0.0.1 signed by it, as files."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate("Nexus test CA", ca_key, None, ca_key, ca=True)
    server_cert = _certificate("127.0.0.1", server_key, ca_cert.subject, ca_key, ca=False)
    files = {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server.key"}
    files["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(
        server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


class TlsServer:
    """aiosmtpd on loopback: implicit TLS, or STARTTLS required with a login (mailer / PASSWORD)."""

    def __init__(self, pki, *, implicit: bool):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.messages: list = []
        self.logins: list = []
        server = self

        class Handler:
            async def handle_DATA(self, smtp, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
                tls = smtp.transport.get_extra_info("ssl_object") is not None
                server.messages.append({"to": envelope.rcpt_tos, "tls": tls})
                return "250 OK"

        def authenticator(smtp, session, envelope, mechanism, auth_data):
            server.logins.append(auth_data.login.decode())
            return AuthResult(success=auth_data.login == b"mailer" and auth_data.password == PASSWORD.encode(), handled=False)

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pki["cert"], pki["key"])
        self.port = free_port()
        if implicit:
            self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, ssl_context=context)
        else:
            self.controller = Controller(
                Handler(),
                hostname="127.0.0.1",
                port=self.port,
                tls_context=context,
                require_starttls=True,
                authenticator=authenticator,
                auth_required=True,
            )
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture(scope="module")
def starttls_server(pki):
    server = TlsServer(pki, implicit=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def implicit_tls_server(pki):
    server = TlsServer(pki, implicit=True)
    yield server
    server.stop()


@pytest.fixture
def smtp_url(settings):
    """smtp_url(url): the platform configured with NEXUS_SMTP_URL=url, as the settings module reads it."""

    def configure(url: str) -> None:
        settings.NEXUS_MAIL_TRANSPORT = "smtp"
        settings.EMAIL_BACKEND = "apps.mail.backends.SmtpBackend"
        for name, value in smtp_url_settings(url).items():
            setattr(settings, name, value)

    return configure


def _send(acme, to="ada@example.test") -> dict:
    return mail_send_for_run(run_id="run_tls", actor="user:alice", tenant_id=acme.pk, to=[to], subject="tls", body="b")


def test_starttls_with_a_login_and_a_private_ca(acme, fresh_quota, starttls_server, pki, smtp_url):
    starttls_server.messages.clear()
    smtp_url(f"smtp://mailer:{PASSWORD}@127.0.0.1:{starttls_server.port}?starttls=true&cafile={pki['ca']}&timeout=5")
    sent = _send(acme)
    assert sent["delivered_to"] == f"smtp://127.0.0.1:{starttls_server.port}"
    assert starttls_server.messages == [{"to": ["ada@example.test"], "tls": True}]
    assert starttls_server.logins[-1] == "mailer"
    connection.set_tenant(acme)
    assert MailMessage.objects.get(id=sent["mail_id"]).status == "sent"


def test_implicit_tls_with_smtps(acme, fresh_quota, implicit_tls_server, pki, smtp_url):
    implicit_tls_server.messages.clear()
    smtp_url(f"smtps://127.0.0.1:{implicit_tls_server.port}?cafile={pki['ca']}&timeout=5")
    sent = _send(acme)
    assert sent["delivered_to"] == f"smtps://127.0.0.1:{implicit_tls_server.port}"
    assert implicit_tls_server.messages == [{"to": ["ada@example.test"], "tls": True}]


def test_a_server_certificate_nobody_vouches_for_is_refused(acme, fresh_quota, implicit_tls_server, smtp_url):
    implicit_tls_server.messages.clear()
    smtp_url(f"smtps://127.0.0.1:{implicit_tls_server.port}?timeout=5")  # the system's CAs only
    with pytest.raises(MailFailed) as refused:
        _send(acme)
    assert "CERTIFICATE_VERIFY_FAILED" in refused.value.detail
    assert implicit_tls_server.messages == []
    connection.set_tenant(acme)
    assert MailMessage.objects.get().status == "failed"


def test_a_wrong_password_is_refused_and_never_recorded(acme, fresh_quota, starttls_server, pki, smtp_url):
    starttls_server.messages.clear()
    smtp_url(f"smtp://mailer:not-{PASSWORD}@127.0.0.1:{starttls_server.port}?starttls=true&cafile={pki['ca']}&timeout=5")
    with pytest.raises(MailFailed) as refused:
        _send(acme)
    assert "535" in refused.value.detail and PASSWORD not in refused.value.detail
    assert starttls_server.messages == []
    connection.set_tenant(acme)
    failed = MailMessage.objects.get()
    assert failed.status == "failed" and PASSWORD not in failed.error and PASSWORD not in failed.transport
