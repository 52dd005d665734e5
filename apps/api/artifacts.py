"""REST API for artifacts: list and show metadata, download the bytes as an attachment."""

from django.http import HttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from apps.api.base import ERRORS, TenantApiView
from apps.api.serializers import MAX_OFFSET, ArtifactListSerializer, ArtifactSerializer, RequestSerializer
from apps.artifacts.representation import artifact_data
from apps.artifacts.selectors import artifact_get, artifact_list
from apps.artifacts.services import CONTENT_TYPES


class ArtifactListQuerySerializer(RequestSerializer):
    execution = serializers.CharField(required=False, help_text="only the artifacts of this run (run_…)")
    limit = serializers.IntegerField(required=False, default=50, min_value=1, max_value=500)
    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=MAX_OFFSET)


class ArtifactListView(TenantApiView):
    @extend_schema(
        parameters=[ArtifactListQuerySerializer],
        responses={200: ArtifactListSerializer, **ERRORS},
        operation_id="artifacts_list",
        summary="List artifacts (metadata only), newest first",
    )
    def get(self, request):
        query = self.validated(ArtifactListQuerySerializer, request.query_params)
        count, artifacts = artifact_list(**self.scope, **query)
        return Response({"count": count, "results": [artifact_data(a) for a in artifacts]})


class ArtifactDetailView(TenantApiView):
    @extend_schema(
        responses={200: ArtifactSerializer, **ERRORS}, operation_id="artifacts_retrieve", summary="Show an artifact's metadata"
    )
    def get(self, request, artifact_id: str):
        return Response(artifact_data(artifact_get(**self.scope, artifact_id=artifact_id)))


class ArtifactDownloadView(TenantApiView):
    @extend_schema(
        responses={**{(200, content_type): OpenApiTypes.BINARY for content_type in CONTENT_TYPES}, **ERRORS},
        operation_id="artifacts_download",
        summary="Download an artifact's bytes (always as an attachment)",
    )
    def get(self, request, artifact_id: str):
        artifact = artifact_get(**self.scope, artifact_id=artifact_id, with_data=True)
        data = bytes(artifact.data)
        response = HttpResponse(data, content_type=artifact.content_type)
        response["Content-Length"] = str(len(data))
        # Never rendered in the API's origin: an SVG or HTML-ish file could carry script.
        response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=artifact.name)
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response["Cache-Control"] = "private, no-store"
        return response
