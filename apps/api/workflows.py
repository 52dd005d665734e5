"""REST API for workflows: list, create, show, update, delete, deploy, validate and test."""

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.response import Response

from apps.api import serializers as s
from apps.api.base import ERRORS, TenantApiView
from apps.runs.models import Channel
from apps.runs.representation import execution_data
from apps.runs.services import run_start, run_suite
from apps.workflows.representation import deployment_data, workflow_data
from apps.workflows.selectors import deployments_by_workflow, workflow_get, workflow_list, workflow_validate
from apps.workflows.services import workflow_create, workflow_delete, workflow_deploy, workflow_update

TEST_RESULT = PolymorphicProxySerializer(
    component_name="WorkflowTestResult",
    serializers=[s.ExecutionSerializer, s.SuiteResultSerializer],
    resource_type_field_name=None,
)


class WorkflowListView(TenantApiView):
    @extend_schema(
        operation_id="workflows_list", responses={200: s.WorkflowListSerializer, **ERRORS}, summary="List the tenant's workflows"
    )
    def get(self, request):
        workflows = workflow_list(**self.scope)
        deployments = deployments_by_workflow([w.id for w in workflows])
        return Response(
            {"count": len(workflows), "results": [workflow_data(w, deployments=deployments[w.id]) for w in workflows]}
        )

    @extend_schema(
        operation_id="workflows_create",
        request=s.WorkflowCreateSerializer,
        responses={201: s.WorkflowSerializer, 409: s.ErrorSerializer, **ERRORS},
        summary="Create a workflow from a definition or a template",
    )
    def post(self, request):
        data = self.validated(s.WorkflowCreateSerializer, request.data)
        workflow = workflow_create(**self.scope, **data)
        return Response(workflow_data(workflow, deployments=[], with_definition=True), status=status.HTTP_201_CREATED)


class WorkflowDetailView(TenantApiView):
    @extend_schema(
        operation_id="workflows_retrieve",
        responses={200: s.WorkflowSerializer, **ERRORS},
        summary="Show a workflow (by id or slug)",
    )
    def get(self, request, ref: str):
        workflow = workflow_get(**self.scope, ref=ref)
        deployments = deployments_by_workflow([workflow.id])[workflow.id]
        return Response(workflow_data(workflow, deployments=deployments, with_definition=True))

    @extend_schema(
        operation_id="workflows_update",
        request=s.WorkflowUpdateSerializer,
        responses={200: s.WorkflowSerializer, **ERRORS},
        summary="Update a workflow; a new definition adds a version",
    )
    def patch(self, request, ref: str):
        data = self.validated(s.WorkflowUpdateSerializer, request.data)
        workflow = workflow_update(**self.scope, ref=ref, **data)
        deployments = deployments_by_workflow([workflow.id])[workflow.id]
        return Response(workflow_data(workflow, deployments=deployments, with_definition=True))

    @extend_schema(
        operation_id="workflows_delete", responses={204: None, **ERRORS}, summary="Delete a workflow (its runs stay in history)"
    )
    def delete(self, request, ref: str):
        workflow_delete(**self.scope, ref=ref)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WorkflowDeployView(TenantApiView):
    @extend_schema(
        operation_id="workflows_deploy",
        request=s.DeploySerializer,
        responses={200: s.DeployResultSerializer, **ERRORS},
        summary="Deploy a version to an environment",
    )
    def post(self, request, ref: str):
        data = self.validated(s.DeploySerializer, request.data)
        deployment = workflow_deploy(**self.scope, ref=ref, **data)
        return Response({"status": "deployed", "workflow_id": deployment.workflow_id, **deployment_data(deployment)})


class WorkflowValidateView(TenantApiView):
    @extend_schema(
        operation_id="workflows_validate",
        request=s.ValidateSerializer,
        responses={200: s.ValidateResultSerializer, **ERRORS},
        summary="Check a definition without storing it",
    )
    def post(self, request):
        data = self.validated(s.ValidateSerializer, request.data)
        return Response(workflow_validate(**self.scope, definition=data["definition"]))


class WorkflowTestView(TenantApiView):
    @extend_schema(
        operation_id="workflows_test",
        request=s.TestSerializer,
        responses={200: TEST_RESULT, **ERRORS},
        summary="Run the latest version once (`inputs`: the execution), or its test cases (`suite`: the results)",
    )
    def post(self, request, ref: str):
        data = self.validated(s.TestSerializer, request.data)
        if "suite" in data:
            suite = None if data["suite"] == "all" else data["suite"]
            return Response(run_suite(**self.scope, workflow_ref=ref, suite=suite, channel=Channel.API))
        execution = run_start(
            **self.scope, workflow_ref=ref, inputs=data.get("inputs", {}), channel=Channel.API, environment=None
        )
        return Response(execution_data(execution))
