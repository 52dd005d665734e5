"""The base of every REST view: the caller and its tenant, read once and refused when absent (fail closed).

The tenant middleware authenticates the credential and chooses the tenant before DRF runs; a view reads them
only through `principal` and `tenant` here, which raise instead of handing `None` to a service. The shared
error map documents the answers every view can give.
"""

from typing import Any

from rest_framework.views import APIView

from apps.api.serializers import ErrorSerializer
from apps.core.errors import NotAuthenticated, PermissionDenied
from apps.core.principal import Principal
from apps.tenants.models import Tenant

ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer}


def validated(serializer_class, data) -> Any:
    """`data` checked by `serializer_class`; a bad field answers 400 naming it (apps/api/errors.py)."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# No class docstrings here: drf-spectacular would print them into every operation's description.


class PrincipalApiView(APIView):
    # A view for an authenticated caller, tenant-scoped or not (platform administration).

    @property
    def principal(self) -> Principal:
        principal = getattr(self.request, "principal", None)
        if principal is None:
            raise NotAuthenticated("authentication credentials were not provided")
        return principal

    def validated(self, serializer_class, data) -> Any:
        return validated(serializer_class, data)


class TenantApiView(PrincipalApiView):
    # A view acting inside the caller's tenant: every service call gets `self.scope` (principal, tenant_id).

    @property
    def tenant(self) -> Tenant:
        tenant = getattr(self.request, "tenant", None)
        if tenant is None or tenant.pk is None:
            raise PermissionDenied("no tenant chosen for this request", code="tenant_required")
        return tenant

    @property
    def scope(self) -> dict[str, Any]:
        return {"principal": self.principal, "tenant_id": self.tenant.pk}
