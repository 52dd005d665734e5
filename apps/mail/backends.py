"""The SMTP backend NEXUS_SMTP_URL selects: Django's, verifying the server against `cafile` when one is given."""

import ssl

from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend
from django.utils.functional import cached_property


class SmtpBackend(EmailBackend):
    """Django's SMTP backend; its TLS context always verifies the server's certificate and name, against the
    system's trust store or NEXUS_SMTP_CA_FILE (a private CA), and presents the client certificate if set.
    (Django's own drops the system trust store as soon as a client certificate is configured.)"""

    @cached_property
    def ssl_context(self):
        context = ssl.create_default_context(cafile=getattr(settings, "NEXUS_SMTP_CA_FILE", None) or None)
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context
