// The OpenAPI document served at GET /openapi.json. The same text is docs/openapi.json (a test
// checks they are identical): edit both together. Kept in the binary, not a resource bundle, so
// that an installed `kbindex` serves it.
enum OpenAPIDocument {
    static let json = #"""
{
  "openapi": "3.0.3",
  "info": {
    "title": "kbindex",
    "version": "1",
    "description": "The HTTP API of `kbindex serve`: search served indexes (vector, BM25 or hybrid), fetch chunks with their neighbours, embed texts with the built-in model (OpenAI-compatible), server info, health and Prometheus metrics, and MCP (streamable HTTP) at /mcp. When the server has a token (--token or KBINDEX_TOKEN), every route but GET /healthz needs 'Authorization: Bearer TOKEN'. Requests whose Host is neither loopback nor allowed with --allow-host (when bound to loopback) or whose Origin is a web page that is neither loopback nor allowed (--allow-origin) are refused with 403. Every error is JSON: {\"error\": {\"code\", \"message\"}}."
  },
  "servers": [
    {
      "url": "http://127.0.0.1:8765"
    }
  ],
  "security": [
    {},
    {
      "bearer": []
    }
  ],
  "paths": {
    "/v1/search": {
      "post": {
        "operationId": "search",
        "summary": "Search an index with one or more questions",
        "description": "Give either 'query' (one question) or 'queries' (up to 64, answered together in one pass over the index). The response always has one result per question, in the order asked, under 'results'. Questions arriving together from concurrent requests are embedded and scanned as one batch.",
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/SearchRequest"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "One result per question, in order.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/SearchResponse"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "405": {
            "$ref": "#/components/responses/MethodNotAllowed"
          },
          "413": {
            "$ref": "#/components/responses/TooLarge"
          },
          "500": {
            "$ref": "#/components/responses/ServerError"
          },
          "502": {
            "$ref": "#/components/responses/BadGateway"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/v1/chunks/{id}": {
      "get": {
        "operationId": "chunk",
        "summary": "A chunk with its document's metadata and its neighbouring chunks",
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "string",
              "minLength": 1,
              "maxLength": 256
            },
            "description": "A chunk id from a search hit."
          },
          {
            "name": "index",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string",
              "minLength": 1,
              "maxLength": 256
            },
            "description": "The index's name (default: the only index)."
          },
          {
            "name": "neighbours",
            "in": "query",
            "required": false,
            "schema": {
              "type": "integer",
              "minimum": 0,
              "maximum": 10,
              "default": 1
            },
            "description": "Chunks to include on either side, from the same document."
          }
        ],
        "responses": {
          "200": {
            "description": "The chunk, its document and neighbours.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ChunkContext"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "405": {
            "$ref": "#/components/responses/MethodNotAllowed"
          },
          "500": {
            "$ref": "#/components/responses/ServerError"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/v1/info": {
      "get": {
        "operationId": "info",
        "summary": "Server version, model and served indexes",
        "responses": {
          "200": {
            "description": "What is served.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/ServiceInfo"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "405": {
            "$ref": "#/components/responses/MethodNotAllowed"
          }
        }
      }
    },
    "/v1/embeddings": {
      "post": {
        "operationId": "embeddings",
        "summary": "Embed texts with the served model (OpenAI-compatible)",
        "description": "The request and response follow OpenAI's embeddings API. 'model' may be left out, or must name the served model (see /v1/info); any other is 404 model_not_found. Vectors are L2-normalised.",
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/EmbeddingsRequest"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "One vector per input, in order.",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/EmbeddingsResponse"
                }
              }
            }
          },
          "400": {
            "$ref": "#/components/responses/BadRequest"
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "404": {
            "$ref": "#/components/responses/NotFound"
          },
          "405": {
            "$ref": "#/components/responses/MethodNotAllowed"
          },
          "413": {
            "$ref": "#/components/responses/TooLarge"
          },
          "500": {
            "$ref": "#/components/responses/ServerError"
          },
          "502": {
            "$ref": "#/components/responses/BadGateway"
          },
          "503": {
            "$ref": "#/components/responses/Unavailable"
          }
        }
      }
    },
    "/healthz": {
      "get": {
        "operationId": "health",
        "summary": "Liveness: 200 while the server runs (no token needed)",
        "security": [
          {}
        ],
        "responses": {
          "200": {
            "description": "The server is up.",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object",
                  "additionalProperties": false,
                  "required": [
                    "status"
                  ],
                  "properties": {
                    "status": {
                      "type": "string",
                      "enum": [
                        "ok"
                      ]
                    }
                  }
                }
              }
            }
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "405": {
            "$ref": "#/components/responses/MethodNotAllowed"
          }
        }
      }
    },
    "/metrics": {
      "get": {
        "operationId": "metrics",
        "summary": "Prometheus metrics",
        "description": "kbindex_http_requests_total{route,method,status}, kbindex_http_request_duration_seconds{route} (histogram), kbindex_search_batch_size (histogram of questions per batch), kbindex_index_generation{index}, kbindex_index_chunks{index}, kbindex_index_documents{index}.",
        "responses": {
          "200": {
            "description": "Prometheus text exposition format 0.0.4.",
            "content": {
              "text/plain": {
                "schema": {
                  "type": "string"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "405": {
            "$ref": "#/components/responses/MethodNotAllowed"
          }
        }
      }
    },
    "/openapi.json": {
      "get": {
        "operationId": "openapi",
        "summary": "This document",
        "responses": {
          "200": {
            "description": "The OpenAPI document.",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "405": {
            "$ref": "#/components/responses/MethodNotAllowed"
          }
        }
      }
    },
    "/mcp": {
      "post": {
        "operationId": "mcp",
        "summary": "MCP streamable HTTP (stateless): one JSON-RPC message from the client, one JSON answer",
        "description": "The Model Context Protocol's streamable HTTP transport, stateless (no Mcp-Session-Id, no event stream; GET and DELETE answer 405). Tools: search, fetch, status. Use an MCP client rather than calling it by hand. Errors of the transport are JSON-RPC error objects; 401 and 403 are this API's Error.",
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "type": "object"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "A JSON-RPC response.",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            }
          },
          "202": {
            "description": "Accepted: a notification or a response from the client."
          },
          "400": {
            "description": "Not a valid JSON-RPC message, or a bad MCP-Protocol-Version (JSON-RPC error).",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            }
          },
          "406": {
            "description": "Accept does not include application/json (JSON-RPC error).",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            }
          },
          "413": {
            "description": "The body is larger than 1 MiB (JSON-RPC error).",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            }
          },
          "415": {
            "description": "Content-Type is not application/json (JSON-RPC error).",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            }
          },
          "500": {
            "description": "The MCP server failed (JSON-RPC error).",
            "content": {
              "application/json": {
                "schema": {
                  "type": "object"
                }
              }
            }
          },
          "401": {
            "$ref": "#/components/responses/Unauthorized"
          },
          "403": {
            "$ref": "#/components/responses/Forbidden"
          },
          "405": {
            "$ref": "#/components/responses/MethodNotAllowed"
          }
        }
      }
    }
  },
  "components": {
    "securitySchemes": {
      "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The server's token (--token or KBINDEX_TOKEN)."
      }
    },
    "responses": {
      "BadRequest": {
        "description": "The request is malformed or over a limit: invalid JSON, a wrong type, an unknown field or query parameter, a value out of range (k over 100, a question over 4096 characters, more than 64 questions...).",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Unauthorized": {
        "description": "The server has a token and the request did not carry it.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        },
        "headers": {
          "WWW-Authenticate": {
            "schema": {
              "type": "string"
            },
            "description": "Bearer realm=\"kbindex\""
          }
        }
      },
      "Forbidden": {
        "description": "The Host or Origin header is not allowed (DNS rebinding protection).",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "NotFound": {
        "description": "No such route, index, chunk or model.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "MethodNotAllowed": {
        "description": "The route does not answer this method.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        },
        "headers": {
          "Allow": {
            "schema": {
              "type": "string"
            },
            "description": "The methods it answers."
          }
        }
      },
      "TooLarge": {
        "description": "The body is larger than 1 MiB.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "ServerError": {
        "description": "A damaged index or model file was found while answering.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "BadGateway": {
        "description": "The remote embedding service the index was built with failed after its retries (code embedding_service_error): its error is in the message.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        }
      },
      "Unavailable": {
        "description": "The server is busy (too many questions waiting: code busy), the request timed out (timeout), or the server is shutting down (shutting_down); try again after Retry-After seconds.",
        "content": {
          "application/json": {
            "schema": {
              "$ref": "#/components/schemas/Error"
            }
          }
        },
        "headers": {
          "Retry-After": {
            "schema": {
              "type": "integer"
            }
          }
        }
      }
    },
    "schemas": {
      "Error": {
        "type": "object",
        "additionalProperties": false,
        "required": [
          "error"
        ],
        "properties": {
          "error": {
            "type": "object",
            "additionalProperties": false,
            "required": [
              "code",
              "message"
            ],
            "properties": {
              "code": {
                "type": "string",
                "description": "Machine-readable: invalid_request, unauthorized, forbidden_host, forbidden_origin, not_found, unknown_index, unknown_chunk, model_not_found, method_not_allowed, payload_too_large, busy, timeout, shutting_down, index_unavailable, index_damaged, model_error, embedding_service_error, internal_error."
              },
              "message": {
                "type": "string",
                "description": "One line for a person."
              }
            }
          }
        }
      },
      "SearchRequest": {
        "type": "object",
        "additionalProperties": false,
        "description": "Exactly one of 'query' and 'queries'.",
        "oneOf": [
          {
            "required": [
              "query"
            ]
          },
          {
            "required": [
              "queries"
            ]
          }
        ],
        "properties": {
          "query": {
            "type": "string",
            "minLength": 1,
            "maxLength": 4096,
            "pattern": "\\S",
            "description": "A question: any text with at least one non-space character, at most 4096 characters."
          },
          "queries": {
            "type": "array",
            "minItems": 1,
            "maxItems": 64,
            "items": {
              "type": "string",
              "minLength": 1,
              "maxLength": 4096,
              "pattern": "\\S",
              "description": "A question: any text with at least one non-space character, at most 4096 characters."
            }
          },
          "k": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "default": 5,
            "description": "Hits per question."
          },
          "mode": {
            "type": "string",
            "enum": [
              "hybrid",
              "vector",
              "lexical"
            ],
            "description": "Default: hybrid (vector when the index has no BM25 section)."
          },
          "path": {
            "oneOf": [
              {
                "type": "string",
                "minLength": 1,
                "maxLength": 1024
              },
              {
                "type": "array",
                "minItems": 1,
                "maxItems": 32,
                "items": {
                  "type": "string",
                  "minLength": 1,
                  "maxLength": 1024
                }
              }
            ],
            "description": "Only documents whose path matches these globs (as in .gitignore: '*.md' at any depth, 'notes/*' a path), relative to the indexed folder."
          },
          "index": {
            "type": "string",
            "minLength": 1,
            "maxLength": 256,
            "description": "The index's name (default: the only index)."
          },
          "fusion": {
            "type": "string",
            "enum": [
              "convex",
              "rrf"
            ],
            "default": "convex",
            "description": "Hybrid: convex (alpha*cosine + (1-alpha)*scaled BM25) or reciprocal rank fusion."
          },
          "alpha": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "default": 0.85
          },
          "rrf_k": {
            "type": "number",
            "minimum": 0,
            "maximum": 1000000000.0,
            "default": 60
          },
          "vector_weight": {
            "type": "number",
            "minimum": 0,
            "maximum": 1000000000.0,
            "default": 1
          },
          "lexical_weight": {
            "type": "number",
            "minimum": 0,
            "maximum": 1000000000.0,
            "default": 1
          }
        }
      },
      "SearchResponse": {
        "type": "object",
        "additionalProperties": false,
        "required": [
          "results",
          "took_ms"
        ],
        "properties": {
          "results": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/SearchResult"
            }
          },
          "took_ms": {
            "type": "number",
            "description": "Time the server spent on the request, in milliseconds."
          }
        }
      },
      "SearchResult": {
        "type": "object",
        "additionalProperties": false,
        "required": [
          "index",
          "generation",
          "mode",
          "hits"
        ],
        "properties": {
          "index": {
            "type": "string"
          },
          "generation": {
            "type": "integer",
            "description": "1 at start, +1 at each reload of the index (a build or compact)."
          },
          "mode": {
            "type": "string",
            "enum": [
              "hybrid",
              "vector",
              "lexical"
            ],
            "description": "The mode used."
          },
          "hits": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Hit"
            }
          }
        }
      },
      "Hit": {
        "type": "object",
        "additionalProperties": false,
        "required": [
          "id",
          "rank",
          "score",
          "path",
          "title",
          "heading",
          "text"
        ],
        "description": "The object 'kbindex query --json' prints.",
        "anyOf": [
          {"required": ["line_start", "line_end"]},
          {"required": ["page", "page_end"]},
          {"required": ["paragraph_start", "paragraph_end"]}
        ],
        "properties": {
          "id": {
            "type": "string",
            "description": "Stable chunk id, for /v1/chunks/{id}."
          },
          "rank": {
            "type": "integer",
            "minimum": 1
          },
          "score": {
            "type": "number"
          },
          "vector_score": {
            "type": "number"
          },
          "bm25_score": {
            "type": "number"
          },
          "vector_rank": {
            "type": "integer"
          },
          "lexical_rank": {
            "type": "integer"
          },
          "path": {
            "type": "string"
          },
          "title": {
            "type": "string"
          },
          "line_start": {
            "type": "integer",
            "description": "First line in the file (text files; PDFs have page, DOCX/ODT/EPUB paragraph_start instead)."
          },
          "line_end": {
            "type": "integer",
            "description": "Last line, inclusive."
          },
          "page": {
            "type": "integer",
            "description": "PDF: the chunk's first page (1 = the first page, whatever its printed label)."
          },
          "page_end": {
            "type": "integer",
            "description": "PDF: its last page, inclusive."
          },
          "paragraph_start": {
            "type": "integer",
            "description": "DOCX, ODT, EPUB: the chunk's first paragraph in the document body (a heading counts as one)."
          },
          "paragraph_end": {
            "type": "integer",
            "description": "DOCX, ODT, EPUB: its last paragraph, inclusive."
          },
          "heading": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "text": {
            "type": "string"
          }
        }
      },
      "Chunk": {
        "type": "object",
        "additionalProperties": false,
        "required": [
          "id",
          "ordinal",
          "heading",
          "text"
        ],
        "anyOf": [
          {"required": ["line_start", "line_end"]},
          {"required": ["page", "page_end"]},
          {"required": ["paragraph_start", "paragraph_end"]}
        ],
        "properties": {
          "id": {
            "type": "string",
            "description": "Stable chunk id: 16 hex digits, '-', the chunk's ordinal in its document."
          },
          "ordinal": {
            "type": "integer",
            "minimum": 0
          },
          "line_start": {
            "type": "integer",
            "description": "First line in the file (text files; PDFs have page, DOCX/ODT/EPUB paragraph_start instead)."
          },
          "line_end": {
            "type": "integer",
            "description": "Last line, inclusive."
          },
          "page": {
            "type": "integer",
            "description": "PDF: the chunk's first page (1 = the first page, whatever its printed label)."
          },
          "page_end": {
            "type": "integer",
            "description": "PDF: its last page, inclusive."
          },
          "paragraph_start": {
            "type": "integer",
            "description": "DOCX, ODT, EPUB: the chunk's first paragraph in the document body (a heading counts as one)."
          },
          "paragraph_end": {
            "type": "integer",
            "description": "DOCX, ODT, EPUB: its last paragraph, inclusive."
          },
          "heading": {
            "type": "array",
            "items": {
              "type": "string"
            }
          },
          "text": {
            "type": "string"
          }
        }
      },
      "ChunkContext": {
        "type": "object",
        "additionalProperties": false,
        "required": [
          "index",
          "generation",
          "document",
          "chunk",
          "before",
          "after"
        ],
        "properties": {
          "index": {
            "type": "string"
          },
          "generation": {
            "type": "integer"
          },
          "document": {
            "type": "object",
            "additionalProperties": false,
            "required": [
              "path",
              "title",
              "bytes",
              "modified",
              "sha256",
              "chunks"
            ],
            "properties": {
              "path": {
                "type": "string"
              },
              "title": {
                "type": "string"
              },
              "bytes": {
                "type": "integer"
              },
              "modified": {
                "type": "string",
                "description": "ISO 8601"
              },
              "sha256": {
                "type": "string"
              },
              "chunks": {
                "type": "integer"
              }
            }
          },
          "chunk": {
            "$ref": "#/components/schemas/Chunk"
          },
          "before": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Chunk"
            }
          },
          "after": {
            "type": "array",
            "items": {
              "$ref": "#/components/schemas/Chunk"
            }
          }
        }
      },
      "ServiceInfo": {
        "type": "object",
        "additionalProperties": false,
        "required": [
          "version",
          "model",
          "indexes"
        ],
        "properties": {
          "version": {
            "type": "string"
          },
          "model": {
            "type": "object",
            "additionalProperties": false,
            "required": [
              "name",
              "dimensions",
              "max_tokens",
              "precision",
              "provider"
            ],
            "properties": {
              "name": {
                "type": "string"
              },
              "dimensions": {
                "type": "integer"
              },
              "max_tokens": {
                "type": "integer"
              },
              "precision": {
                "type": "string",
                "enum": [
                  "f32",
                  "int8"
                ],
                "description": "The arithmetic the encoder runs in for questions and /v1/embeddings inputs: the first index's recorded precision unless kbindex serve --precision chose (f32 for a remote model)."
              },
              "provider": {
                "type": "string",
                "description": "Where vectors come from: local (the built-in encoder), openai (an OpenAI-compatible service) or ollama. A kbindex that knows more providers may send others."
              },
              "query_prompt": {
                "type": "string",
                "description": "The prompt prepended to questions; absent when there is none. /v1/embeddings adds no prompt."
              }
            }
          },
          "indexes": {
            "type": "array",
            "items": {
              "type": "object",
              "additionalProperties": false,
              "required": [
                "name",
                "generation",
                "documents",
                "chunks",
                "segments",
                "bytes",
                "lexical",
                "precision",
                "loaded_at"
              ],
              "properties": {
                "name": {
                  "type": "string"
                },
                "generation": {
                  "type": "integer"
                },
                "documents": {
                  "type": "integer"
                },
                "chunks": {
                  "type": "integer"
                },
                "segments": {
                  "type": "integer"
                },
                "bytes": {
                  "type": "integer"
                },
                "lexical": {
                  "type": "boolean"
                },
                "precision": {
                  "type": "string",
                  "description": "The precision the index was embedded in, as its manifest records it: f32 (no record), int8, or a newer kbindex's value."
                },
                "loaded_at": {
                  "type": "string",
                  "description": "ISO 8601"
                }
              }
            }
          }
        }
      },
      "EmbeddingsRequest": {
        "type": "object",
        "additionalProperties": false,
        "required": [
          "input"
        ],
        "properties": {
          "input": {
            "oneOf": [
              {
                "type": "string",
                "minLength": 1,
                "maxLength": 16384
              },
              {
                "type": "array",
                "minItems": 1,
                "maxItems": 256,
                "items": {
                  "type": "string",
                  "minLength": 1,
                  "maxLength": 16384
                }
              }
            ]
          },
          "model": {
            "type": "string",
            "maxLength": 256,
            "description": "The served model's name (see /v1/info), or left out."
          },
          "encoding_format": {
            "type": "string",
            "enum": [
              "float",
              "base64"
            ],
            "default": "float",
            "description": "base64: little-endian float32s."
          },
          "dimensions": {
            "type": "integer",
            "minimum": 1,
            "description": "Must be the model's dimensions if given."
          },
          "user": {
            "type": "string",
            "maxLength": 256,
            "description": "Accepted and ignored."
          }
        }
      },
      "EmbeddingsResponse": {
        "type": "object",
        "additionalProperties": false,
        "required": [
          "object",
          "data",
          "model",
          "usage"
        ],
        "properties": {
          "object": {
            "type": "string",
            "enum": [
              "list"
            ]
          },
          "data": {
            "type": "array",
            "items": {
              "type": "object",
              "additionalProperties": false,
              "required": [
                "object",
                "index",
                "embedding"
              ],
              "properties": {
                "object": {
                  "type": "string",
                  "enum": [
                    "embedding"
                  ]
                },
                "index": {
                  "type": "integer"
                },
                "embedding": {
                  "oneOf": [
                    {
                      "type": "array",
                      "items": {
                        "type": "number"
                      }
                    },
                    {
                      "type": "string"
                    }
                  ]
                }
              }
            }
          },
          "model": {
            "type": "string"
          },
          "usage": {
            "type": "object",
            "additionalProperties": false,
            "required": [
              "prompt_tokens",
              "total_tokens"
            ],
            "properties": {
              "prompt_tokens": {
                "type": "integer"
              },
              "total_tokens": {
                "type": "integer"
              }
            }
          }
        }
      }
    }
  }
}
"""#
}
