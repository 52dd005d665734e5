"""REST API routes under /api/: v1 resources, the OpenAPI schema and its docs."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.api import views
from apps.api.execute import workflow_execute

urlpatterns = [
    path("v1/workflows/<str:ref>/execute/", workflow_execute),  # first: the hot path resolves soonest
    path("v1/workflows/", views.WorkflowListView.as_view()),
    path("v1/workflows/validate/", views.WorkflowValidateView.as_view()),
    path("v1/workflows/<str:ref>/", views.WorkflowDetailView.as_view()),
    path("v1/workflows/<str:ref>/deploy/", views.WorkflowDeployView.as_view()),
    path("v1/workflows/<str:ref>/test/", views.WorkflowTestView.as_view()),
    path("v1/executions/", views.ExecutionListView.as_view()),
    path("v1/executions/<str:run_id>/", views.ExecutionDetailView.as_view()),
    path("v1/executions/<str:run_id>/cancel/", views.ExecutionCancelView.as_view()),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]
