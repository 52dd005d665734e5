"""REST API views: authenticate (middleware), validate the shape, call one service or selector, render."""

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.access import require
from apps.api import serializers as s
from apps.runs.models import Channel
from apps.runs.representation import execution_data
from apps.runs.selectors import run_get, run_list
from apps.runs.services import run_cancel, run_start, run_suite
from apps.workflows.compiled import compile_definition
from apps.workflows.representation import deployment_data, workflow_data
from apps.workflows.selectors import deployments_by_workflow, workflow_get, workflow_list
from apps.workflows.services import workflow_create, workflow_delete, workflow_deploy, workflow_update

ERRORS = {400: s.ErrorSerializer, 401: s.ErrorSerializer, 403: s.ErrorSerializer, 404: s.ErrorSerializer}
TEST_RESULT = PolymorphicProxySerializer(
    component_name="WorkflowTestResult",
    serializers=[s.ExecutionSerializer, s.SuiteResultSerializer],
    resource_type_field_name=None,
)


def _ctx(request) -> dict:
    return {"principal": request._request.principal, "tenant_id": request._request.tenant.pk}


def _validated(serializer_class, data):
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class WorkflowListView(APIView):
    @extend_schema(
        operation_id="workflows_list", responses={200: s.WorkflowListSerializer, **ERRORS}, summary="List the tenant's workflows"
    )
    def get(self, request):
        workflows = workflow_list(**_ctx(request))
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
        data = _validated(s.WorkflowCreateSerializer, request.data)
        workflow = workflow_create(**_ctx(request), **data)
        return Response(workflow_data(workflow, deployments=[], with_definition=True), status=status.HTTP_201_CREATED)


class WorkflowDetailView(APIView):
    @extend_schema(
        operation_id="workflows_retrieve",
        responses={200: s.WorkflowSerializer, **ERRORS},
        summary="Show a workflow (by id or slug)",
    )
    def get(self, request, ref: str):
        workflow = workflow_get(**_ctx(request), ref=ref)
        deployments = deployments_by_workflow([workflow.id])[workflow.id]
        return Response(workflow_data(workflow, deployments=deployments, with_definition=True))

    @extend_schema(
        operation_id="workflows_update",
        request=s.WorkflowUpdateSerializer,
        responses={200: s.WorkflowSerializer, **ERRORS},
        summary="Update a workflow; a new definition adds a version",
    )
    def patch(self, request, ref: str):
        data = _validated(s.WorkflowUpdateSerializer, request.data)
        workflow = workflow_update(**_ctx(request), ref=ref, **data)
        deployments = deployments_by_workflow([workflow.id])[workflow.id]
        return Response(workflow_data(workflow, deployments=deployments, with_definition=True))

    @extend_schema(
        operation_id="workflows_delete", responses={204: None, **ERRORS}, summary="Delete a workflow (its runs stay in history)"
    )
    def delete(self, request, ref: str):
        workflow_delete(**_ctx(request), ref=ref)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WorkflowDeployView(APIView):
    @extend_schema(
        operation_id="workflows_deploy",
        request=s.DeploySerializer,
        responses={200: s.DeployResultSerializer, **ERRORS},
        summary="Deploy a version to an environment",
    )
    def post(self, request, ref: str):
        data = _validated(s.DeploySerializer, request.data)
        deployment = workflow_deploy(**_ctx(request), ref=ref, **data)
        return Response({"status": "deployed", "workflow_id": deployment.workflow_id, **deployment_data(deployment)})


class ExecutionListView(APIView):
    @extend_schema(
        operation_id="executions_list",
        parameters=[s.ExecutionListQuerySerializer],
        responses={200: s.ExecutionListSerializer, **ERRORS},
        summary="List executions, newest first",
    )
    def get(self, request):
        query = _validated(s.ExecutionListQuerySerializer, request.query_params)
        count, executions = run_list(**_ctx(request), **query)
        return Response({"count": count, "results": [execution_data(e, with_steps=False) for e in executions]})


class ExecutionDetailView(APIView):
    @extend_schema(
        operation_id="executions_retrieve",
        responses={200: s.ExecutionSerializer, **ERRORS},
        summary="Show an execution with its node steps",
    )
    def get(self, request, run_id: str):
        return Response(execution_data(run_get(**_ctx(request), run_id=run_id)))


class ExecutionCancelView(APIView):
    @extend_schema(
        operation_id="executions_cancel",
        request=None,
        responses={200: s.ExecutionSerializer, 409: s.ErrorSerializer, **ERRORS},
        summary="Cancel a queued or running execution",
    )
    def post(self, request, run_id: str):
        return Response(execution_data(run_cancel(**_ctx(request), run_id=run_id)))


class WorkflowValidateView(APIView):
    @extend_schema(
        operation_id="workflows_validate",
        request=s.ValidateSerializer,
        responses={200: s.ValidateResultSerializer, **ERRORS},
        summary="Check a definition without storing it",
    )
    def post(self, request):
        data = _validated(s.ValidateSerializer, request.data)
        require(request._request.principal, "workflow.read", tenant_id=request._request.tenant.pk)
        compiled = compile_definition(data["definition"])
        return Response({"valid": True, "nodes": compiled.node_ids, "inline_eligible": compiled.is_inline_eligible})


class WorkflowTestView(APIView):
    @extend_schema(
        operation_id="workflows_test",
        request=s.TestSerializer,
        responses={200: TEST_RESULT, **ERRORS},
        summary="Run the latest version once (`inputs`: the execution), or its test cases (`suite`: the results)",
    )
    def post(self, request, ref: str):
        data = _validated(s.TestSerializer, request.data)
        if "suite" in data:
            suite = None if data["suite"] == "all" else data["suite"]
            return Response(run_suite(**_ctx(request), workflow_ref=ref, suite=suite, channel=Channel.API))
        execution = run_start(
            **_ctx(request), workflow_ref=ref, inputs=data.get("inputs", {}), channel=Channel.API, environment=None
        )
        return Response(execution_data(execution))
