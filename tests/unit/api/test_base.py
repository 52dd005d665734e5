"""The REST base view fails closed: no principal or no tenant on the request is refused, never passed on as None."""

import pytest
from django.test import RequestFactory
from rest_framework.request import Request

from apps.api.base import PrincipalApiView, TenantApiView
from apps.core.errors import NotAuthenticated, PermissionDenied
from apps.core.principal import Principal
from apps.tenants.models import Tenant

ALICE = Principal(kind="user", actor="user:alice", tenant_id=7, tenant_slug="acme", role="owner")


def _view(view_class, **attributes):
    django_request = RequestFactory().get("/api/v1/workflows/")
    for name, value in attributes.items():
        setattr(django_request, name, value)
    view = view_class()
    view.request = Request(django_request)
    return view


def test_a_request_without_a_principal_is_refused():
    view = _view(TenantApiView, principal=None, tenant=Tenant(pk=7, slug="acme", schema_name="t_acme"))
    with pytest.raises(NotAuthenticated):
        view.principal  # noqa: B018
    with pytest.raises(NotAuthenticated):
        view.scope  # noqa: B018


def test_a_request_without_a_tenant_is_refused():
    view = _view(TenantApiView, principal=ALICE, tenant=None)
    with pytest.raises(PermissionDenied) as refused:
        view.scope  # noqa: B018
    assert refused.value.code == "tenant_required"
    assert _view(TenantApiView, principal=ALICE).principal is ALICE  # the middleware never ran: no tenant either
    with pytest.raises(PermissionDenied):
        _view(TenantApiView, principal=ALICE).tenant  # noqa: B018


def test_the_scope_names_the_principal_and_its_tenant():
    tenant = Tenant(pk=7, slug="acme", schema_name="t_acme")
    assert _view(TenantApiView, principal=ALICE, tenant=tenant).scope == {"principal": ALICE, "tenant_id": 7}
    assert _view(PrincipalApiView, principal=ALICE).principal is ALICE
