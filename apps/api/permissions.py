"""DRF permission: a principal must be present; the role is checked by the services' access layer."""

from rest_framework.permissions import BasePermission


class IsAuthenticatedPrincipal(BasePermission):
    def has_permission(self, request, view) -> bool:
        return getattr(request, "principal", None) is not None
