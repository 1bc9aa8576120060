// The server faces of kbindex (`serve`, `mcp`): see Package.swift's target map.
//
// Layout:
//   Server.swift         KBServerApp: configuration checks, the ServiceGroup (HTTP server + reloader), SIGTERM
//   Configuration.swift  ServerConfiguration and ServerLimits (every input limit in one place)
//   Routes.swift         every route of the HTTP API, declared in one place
//   Handlers.swift       what each route does, over one RetrievalService
//   Requests.swift       parsing and validating request bodies and query strings (strict, one-line 400s)
//   APIError.swift       the JSON error shape, and the ONE mapping from errors to HTTP statuses
//   Middleware.swift     Host/Origin checks (DNS rebinding), bearer auth, CORS, errors as JSON, metrics
//   Metrics.swift        Prometheus metrics (swift-prometheus)
//   Deadline.swift       the request timeout
//   OpenAPI.swift        the OpenAPI document served at /openapi.json (same text as docs/openapi.json)
//   MCP/                 the MCP tools at /mcp and over stdio
