"""Which transport the settings choose from the environment, each case in its own process as a server reads them:
the local outbox with nothing configured, the server NEXUS_SMTP_URL or NEXUS_EMAIL_HOST names otherwise."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # one Django start per case
REPO = Path(__file__).resolve().parents[3]
MAIL_VARIABLES = ("NEXUS_SMTP_URL", "NEXUS_EMAIL_HOST", "NEXUS_EMAIL_BACKEND", "NEXUS_EMAIL_PORT", "NEXUS_MAIL_TRANSPORT")
SCRIPT = """
import json
import django
django.setup()
from django.conf import settings
from apps.mail.transport import mail_transport
names = ("NEXUS_MAIL_TRANSPORT", "EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_USE_TLS", "EMAIL_USE_SSL",
         "EMAIL_HOST_USER", "EMAIL_TIMEOUT", "NEXUS_SMTP_CA_FILE")
print(json.dumps({**{name: getattr(settings, name) for name in names}, "delivered_to": mail_transport()}))
"""


def _settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in MAIL_VARIABLES}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        env={**clean, "DJANGO_SETTINGS_MODULE": "nexus_site.settings.test", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _read(**env: str) -> dict:
    result = _settings(**env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_with_nothing_configured_mail_goes_to_the_local_outbox():
    read = _read()
    assert (read["NEXUS_MAIL_TRANSPORT"], read["delivered_to"]) == ("outbox", "local outbox")


def test_nexus_smtp_url_chooses_that_server_with_its_tls_options():
    read = _read(NEXUS_SMTP_URL="smtp://mailer:hunter2@mail.example.com:587?starttls=true&timeout=20&cafile=/etc/ca.pem")
    assert read == {
        "NEXUS_MAIL_TRANSPORT": "smtp",
        "EMAIL_BACKEND": "apps.mail.backends.SmtpBackend",
        "EMAIL_HOST": "mail.example.com",
        "EMAIL_PORT": 587,
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
        "EMAIL_HOST_USER": "mailer",
        "EMAIL_TIMEOUT": 20,
        "NEXUS_SMTP_CA_FILE": "/etc/ca.pem",
        "delivered_to": "smtp://mail.example.com:587",
    }
    assert _read(NEXUS_SMTP_URL="smtps://mail.example.com")["delivered_to"] == "smtps://mail.example.com:465"


def test_the_older_email_variables_still_choose_a_server_and_the_transport_can_be_forced():
    read = _read(NEXUS_EMAIL_HOST="127.0.0.1", NEXUS_EMAIL_PORT="2525")
    assert (read["NEXUS_MAIL_TRANSPORT"], read["delivered_to"]) == ("smtp", "smtp://127.0.0.1:2525")
    forced = _read(NEXUS_EMAIL_HOST="127.0.0.1", NEXUS_MAIL_TRANSPORT="outbox")
    assert forced["delivered_to"] == "local outbox"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NEXUS_SMTP_URL": "smtp://mailer:hunter2@mail.example.com?tls=1"}, "NEXUS_SMTP_URL: unknown option tls"),
        ({"NEXUS_MAIL_TRANSPORT": "pigeon"}, "NEXUS_MAIL_TRANSPORT must be outbox or smtp"),
        ({"NEXUS_MAIL_OUTBOX_MAX": "0"}, "NEXUS_MAIL_OUTBOX_MAX must be 1 or more"),
    ],
)
def test_a_bad_mail_setting_stops_the_start_naming_it(env, message):
    result = _settings(**env)
    assert result.returncode != 0
    assert message in result.stderr.strip().splitlines()[-1]
    assert "hunter2" not in result.stderr
