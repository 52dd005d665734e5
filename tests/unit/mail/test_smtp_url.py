"""NEXUS_SMTP_URL read into the EMAIL_* settings (apps/mail/smtp_url.py): the TLS modes, the options, and refusals
that name the wrong part without ever quoting the URL (it carries the password)."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.mail.smtp_url import smtp_url_settings


def test_a_plain_url_with_credentials_and_a_port():
    assert smtp_url_settings("smtp://mailer:s%40cret@mail.example.com:2525") == {
        "EMAIL_HOST": "mail.example.com",
        "EMAIL_PORT": 2525,
        "EMAIL_HOST_USER": "mailer",
        "EMAIL_HOST_PASSWORD": "s@cret",
        "EMAIL_USE_TLS": False,
        "EMAIL_USE_SSL": False,
        "EMAIL_TIMEOUT": 10,
        "EMAIL_SSL_CERTFILE": None,
        "EMAIL_SSL_KEYFILE": None,
        "NEXUS_SMTP_CA_FILE": None,
    }


def test_smtps_is_implicit_tls_on_465_and_starttls_upgrades_smtp():
    implicit = smtp_url_settings("smtps://mail.example.com")
    assert (implicit["EMAIL_PORT"], implicit["EMAIL_USE_SSL"], implicit["EMAIL_USE_TLS"]) == (465, True, False)
    upgraded = smtp_url_settings("smtp://mail.example.com:587?starttls=true&timeout=30&cafile=/etc/ca.pem")
    assert (upgraded["EMAIL_PORT"], upgraded["EMAIL_USE_SSL"], upgraded["EMAIL_USE_TLS"]) == (587, False, True)
    assert (upgraded["EMAIL_TIMEOUT"], upgraded["NEXUS_SMTP_CA_FILE"]) == (30, "/etc/ca.pem")
    plain = smtp_url_settings("smtp://127.0.0.1")
    assert (plain["EMAIL_PORT"], plain["EMAIL_HOST_USER"], plain["EMAIL_HOST_PASSWORD"]) == (25, "", "")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://user:hunter2@mail.example.com", "the scheme must be smtp:// or smtps://"),
        ("mail.example.com:25", "the scheme must be smtp:// or smtps://"),
        ("smtp://user:hunter2@", "no host"),
        ("smtp://user:hunter2@mail.example.com:99999", "the port must be a number from 1 to 65535"),
        ("smtp://user:hunter2@mail.example.com:abc", "the port must be a number from 1 to 65535"),
        ("smtp://user:hunter2@mail.example.com/inbox", "no path or fragment"),
        ("smtp://user:hunter2@mail.example.com?tls=true", "unknown option tls"),
        ("smtp://user:hunter2@mail.example.com?starttls=maybe", "starttls must be true or false"),
        ("smtp://user:hunter2@mail.example.com?starttls=true&starttls=false", "option starttls given more than once"),
        ("smtps://user:hunter2@mail.example.com?starttls=true", "smtps:// is TLS from the first byte"),
        ("smtp://user:hunter2@mail.example.com?timeout=0", "timeout must be whole seconds from 1 to 300"),
        ("smtp://user:hunter2@mail.example.com?timeout=2.5", "timeout must be whole seconds from 1 to 300"),
        ("smtp://user:hunter2@mail.example.com?cafile=/ca.pem", "cafile and certfile apply to TLS"),
        ("smtps://user:hunter2@mail.example.com?keyfile=/k.pem", "keyfile needs certfile"),
        ("smtps://user:hunter2@mail.example.com?cafile=", "cafile must be a file path"),
        ("smtp://user:hunter2@mail.example.com?starttls", "the options must be name=value pairs"),
    ],
)
def test_a_bad_url_is_refused_naming_the_part_and_never_the_password(url, reason):
    with pytest.raises(ImproperlyConfigured) as refused:
        smtp_url_settings(url)
    message = str(refused.value)
    assert message.startswith("NEXUS_SMTP_URL: ") and reason in message, message
    assert "hunter2" not in message and "user" not in message
