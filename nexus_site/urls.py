"""Top-level URL map: health, the REST API and its schema, the admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("api/", include("apps.api.urls")),
    path("", include("apps.ops.urls")),
    path("admin/", admin.site.urls),
]
