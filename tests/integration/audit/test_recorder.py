"""The audit recorder only reads the public tenant: installing the platform creates it, recording never does."""

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.audit import recorder
from apps.tenants.models import Tenant

pytestmark = pytest.mark.django_db


def test_the_public_tenant_is_the_one_bootstrap_created(nexus_world):
    public = Tenant.objects.get(schema_name=settings.PUBLIC_SCHEMA_NAME)
    assert recorder.public_tenant_id() == public.pk


def test_a_missing_public_tenant_is_a_clear_error_and_nothing_is_created(nexus_world, monkeypatch):
    # given an installation whose public tenant is missing (renamed away, in this test's transaction)
    Tenant.objects.filter(schema_name=settings.PUBLIC_SCHEMA_NAME).update(schema_name="not_public")
    monkeypatch.setattr(recorder, "_public_tenant_id", None)
    count = Tenant.objects.count()

    # when a row that belongs to no tenant is recorded
    with pytest.raises(ImproperlyConfigured, match=r"^the public tenant \(schema 'public'\) does not exist: install"):
        recorder.audit_record(action="user.created", tenant_id=None, actor="system:test")

    # then no tenant was made up on the way
    assert Tenant.objects.count() == count
    assert not Tenant.objects.filter(schema_name=settings.PUBLIC_SCHEMA_NAME).exists()
