"""The gateway's front doors for programs: the HTTP API, its OpenAPI document, the gRPC API,
and the request parsing and responses they share with the portal."""
