"""The REST API door: DRF views over the services, the error shape, the OpenAPI schema."""
