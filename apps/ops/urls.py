"""Operations routes: /health, /metrics."""

from django.urls import path

from apps.ops import views

urlpatterns = [path("health", views.health), path("health/", views.health), path("metrics", views.metrics)]
