from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "apps.integrations"
    label = "integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Every published event goes through the webhook dispatch; events import nothing of integrations.
        # Imported here, not at the top: these import models, which the app registry loads after this module.
        from apps.events.hooks import PublishHook, hook_register
        from apps.integrations.subscriptions import webhook_dispatch, webhook_interested

        hook_register(PublishHook(name="webhooks", on_publish=webhook_dispatch, interested=webhook_interested))
