"""Django app config for tenants."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "apps.tenants"
    label = "tenants"

    def ready(self) -> None:
        # import-cycle: cloning imports the tenant models, which only exist once the app registry is ready.
        from apps.tenants.cloning import on_post_migrate

        # Infrastructure, not domain logic: refresh the template's dump once `migrate_schemas` migrated it.
        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="nexus-tenant-template-dump")
