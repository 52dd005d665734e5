"""The Django admin app, with Nexus's admin site as `admin.site` (apps/ops/admin_site.py): installed in place of
`django.contrib.admin`, so every model any app registers gets the audited admin."""

from django.contrib.admin.apps import AdminConfig


class NexusAdminConfig(AdminConfig):
    default_site = "apps.ops.admin_site.NexusAdminSite"
