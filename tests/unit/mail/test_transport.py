"""Which transport mail takes and what a message's `delivered_to` says (apps/mail/transport.py)."""

from apps.mail.transport import mail_delivers, mail_transport


def test_without_a_mail_server_mail_stays_in_the_local_outbox(settings):
    settings.NEXUS_MAIL_TRANSPORT = "outbox"
    assert (mail_delivers(), mail_transport()) == (False, "local outbox")


def test_with_a_server_delivered_to_names_it_without_credentials(settings):
    settings.NEXUS_MAIL_TRANSPORT = "smtp"
    settings.EMAIL_BACKEND = "apps.mail.backends.SmtpBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_SSL = "mail.example.com", 587, False
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "mailer", "hunter2"
    assert (mail_delivers(), mail_transport()) == (True, "smtp://mail.example.com:587")
    settings.EMAIL_USE_SSL, settings.EMAIL_PORT = True, 465
    assert mail_transport() == "smtps://mail.example.com:465"
    settings.EMAIL_HOST = "::1"
    assert mail_transport() == "smtps://[::1]:465"


def test_another_django_backend_is_named_by_its_path(settings):
    settings.NEXUS_MAIL_TRANSPORT = "smtp"
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    assert mail_transport() == "django.core.mail.backends.console.EmailBackend"
