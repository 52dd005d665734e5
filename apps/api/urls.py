"""REST API routes under /api/: v1 resources, the OpenAPI schema and its docs."""

from django.urls import path

from apps.api import applications, artifacts, datasets, executions, mail, sessions, webhooks, workflows
from apps.api.audit import AuditListView
from apps.api.auth import LoginView, RefreshView
from apps.api.docs import DocsView, SchemaView
from apps.api.execute import workflow_execute
from apps.api.tenants import TenantDetailView, TenantListView, TenantResumeView, TenantSuspendView

urlpatterns = [
    path("v1/workflows/<str:ref>/execute/", workflow_execute),  # first: the hot path resolves soonest
    path("v1/auth/token/", LoginView.as_view()),
    path("v1/auth/refresh/", RefreshView.as_view()),
    path("v1/workflows/", workflows.WorkflowListView.as_view()),
    path("v1/workflows/validate/", workflows.WorkflowValidateView.as_view()),
    path("v1/workflows/<str:ref>/", workflows.WorkflowDetailView.as_view()),
    path("v1/workflows/<str:ref>/deploy/", workflows.WorkflowDeployView.as_view()),
    path("v1/workflows/<str:ref>/test/", workflows.WorkflowTestView.as_view()),
    path("v1/executions/", executions.ExecutionListView.as_view()),
    path("v1/executions/<str:run_id>/", executions.ExecutionDetailView.as_view()),
    path("v1/executions/<str:run_id>/cancel/", executions.ExecutionCancelView.as_view()),
    path("v1/sessions/", sessions.SessionListView.as_view()),
    path("v1/sessions/<str:session_id>/", sessions.SessionDetailView.as_view()),
    path("v1/sessions/<str:session_id>/executions/", sessions.SessionExecutionsView.as_view()),
    path("v1/datasets/", datasets.DatasetListView.as_view()),
    path("v1/datasets/<str:ref>/", datasets.DatasetDetailView.as_view()),
    path("v1/datasets/<str:ref>/rows/", datasets.DatasetRowsView.as_view()),
    path("v1/datasets/<str:ref>/query/", datasets.DatasetQueryView.as_view()),
    path("v1/artifacts/", artifacts.ArtifactListView.as_view()),
    path("v1/artifacts/<str:artifact_id>/", artifacts.ArtifactDetailView.as_view()),
    path("v1/artifacts/<str:artifact_id>/download/", artifacts.ArtifactDownloadView.as_view()),
    path("v1/mail/", mail.MailListView.as_view()),
    path("v1/mail/<str:mail_id>/", mail.MailDetailView.as_view()),
    path("v1/audit/", AuditListView.as_view()),
    path("v1/tenants/", TenantListView.as_view()),
    path("v1/tenants/<str:slug>/", TenantDetailView.as_view()),
    path("v1/tenants/<str:slug>/suspend/", TenantSuspendView.as_view()),
    path("v1/tenants/<str:slug>/resume/", TenantResumeView.as_view()),
    path("v1/apps/", applications.ApplicationListView.as_view()),
    path("v1/apps/<str:app_id>/", applications.ApplicationDetailView.as_view()),
    path("v1/apps/<str:app_id>/rotate/", applications.ApplicationRotateView.as_view()),
    path("v1/apps/<str:app_id>/revoke/", applications.ApplicationRevokeView.as_view()),
    path("v1/apps/<str:app_id>/deliveries/", webhooks.DeliveryListView.as_view()),
    path("v1/apps/<str:app_id>/deliveries/<str:delivery_id>/", webhooks.DeliveryDetailView.as_view()),
    path("v1/apps/<str:app_id>/deliveries/<str:delivery_id>/redeliver/", webhooks.DeliveryRedeliverView.as_view()),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", DocsView.as_view(), name="docs"),
]
