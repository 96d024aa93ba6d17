/// The hand-written OpenAPI 3.0 description of the HTTP API, served at `GET /openapi.json`.
/// Kept beside the routes (and checked by a test that every route is listed and the JSON
/// parses) rather than generated, so it documents intent, not just shapes.
enum OpenAPIDocument {
    static let json = #"""
    {
      "openapi": "3.0.3",
      "info": {
        "title": "Ishtar node API",
        "version": "0.1.0",
        "description": "HTTP JSON API of an Ishtar node. Binds to 127.0.0.1 by default. Byte strings are lowercase hex; times are milliseconds since the Unix epoch. Every error is {\"error\": {\"code\", \"message\"}}. POST /txs relays a transaction its sender already signed with BIP-340; when the node is configured with a bearer token it also requires Authorization: Bearer <token>."
      },
      "servers": [{"url": "http://127.0.0.1:26657"}],
      "paths": {
        "/status": {
          "get": {
            "summary": "Node status",
            "operationId": "getStatus",
            "responses": {
              "200": {"description": "Status", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NodeStatus"}}}}
            }
          }
        },
        "/health": {
          "get": {
            "summary": "Liveness and readiness",
            "operationId": "getHealth",
            "responses": {
              "200": {"description": "Healthy", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NodeHealth"}}}},
              "503": {"description": "Unhealthy; reasons say why", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NodeHealth"}}}}
            }
          }
        },
        "/blocks/latest": {
          "get": {
            "summary": "The last committed block",
            "operationId": "getLatestBlock",
            "responses": {
              "200": {"description": "Block", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Block"}}}},
              "404": {"$ref": "#/components/responses/Error"}
            }
          }
        },
        "/blocks/{height}": {
          "get": {
            "summary": "The committed block at a height",
            "operationId": "getBlock",
            "parameters": [{"name": "height", "in": "path", "required": true, "schema": {"type": "integer", "format": "int64", "minimum": 0}}],
            "responses": {
              "200": {"description": "Block", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Block"}}}},
              "400": {"$ref": "#/components/responses/Error"},
              "404": {"$ref": "#/components/responses/Error"}
            }
          }
        },
        "/txs/{hash}": {
          "get": {
            "summary": "A committed transaction by its SHA-256 hash",
            "operationId": "getTransaction",
            "parameters": [{"name": "hash", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^(0x)?[0-9a-fA-F]{64}$"}}],
            "responses": {
              "200": {"description": "Transaction", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CommittedTransaction"}}}},
              "400": {"$ref": "#/components/responses/Error"},
              "404": {"$ref": "#/components/responses/Error"}
            }
          }
        },
        "/accounts/{account}/nonce": {
          "get": {
            "summary": "The account's committed nonce and the next free one (after its transactions pending here)",
            "operationId": "getAccountNonce",
            "parameters": [{"name": "account", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^(0x)?[0-9a-fA-F]{64}$"}}],
            "responses": {
              "200": {"description": "Nonces", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AccountNonce"}}}},
              "400": {"$ref": "#/components/responses/Error"}
            }
          }
        },
        "/txs": {
          "post": {
            "summary": "Submit a signed transaction (check-tx, then mempool and gossip)",
            "operationId": "submitTransaction",
            "security": [{}, {"bearerAuth": []}],
            "requestBody": {
              "required": true,
              "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/SubmitRequest"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
              }
            },
            "responses": {
              "200": {"description": "Accepted into the mempool (log \"replaced pending transaction <hash>\" when it took the place of a pending one with the same sender and nonce)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SubmitResult"}}}},
              "400": {"$ref": "#/components/responses/Error"},
              "401": {"$ref": "#/components/responses/Error"},
              "413": {"$ref": "#/components/responses/Error"},
              "415": {"$ref": "#/components/responses/Error"},
              "422": {"description": "Refused by check-tx; codespace/rule/log say why", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SubmitResult"}}}}
            }
          }
        },
        "/txs/batch": {
          "post": {
            "summary": "Submit up to 1,000 signed transactions; each is admitted as by POST /txs",
            "description": "Body: JSON {\"txs\": [\"<hex>\", ...]} or application/octet-stream (BE32 length || tx bytes)*. 200 with one verdict per transaction in order, even when some are refused.",
            "operationId": "submitTransactions",
            "security": [{}, {"bearerAuth": []}],
            "requestBody": {
              "required": true,
              "content": {
                "application/json": {"schema": {"type": "object", "required": ["txs"], "properties": {"txs": {"type": "array", "items": {"type": "string"}}}}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
              }
            },
            "responses": {
              "200": {"description": "One verdict per transaction", "content": {"application/json": {"schema": {"type": "object", "properties": {"results": {"type": "array", "items": {"$ref": "#/components/schemas/SubmitResult"}}}}}}},
              "400": {"$ref": "#/components/responses/Error"},
              "401": {"$ref": "#/components/responses/Error"},
              "413": {"$ref": "#/components/responses/Error"},
              "415": {"$ref": "#/components/responses/Error"}
            }
          }
        },
        "/modules/{module}/{path}": {
          "get": {
            "summary": "A module query; forwards /modules/{module}/{path...} to the application",
            "description": "{path} may span several segments, e.g. /modules/accounts/account/<hex>. The answer is the module's JSON value as is; the X-Ishtar-Height header gives the height it reflects.",
            "operationId": "queryModule",
            "parameters": [
              {"name": "module", "in": "path", "required": true, "schema": {"type": "string"}},
              {"name": "path", "in": "path", "required": true, "schema": {"type": "string"}},
              {"name": "data", "in": "query", "required": false, "description": "Query data, hex", "schema": {"type": "string"}},
              {"name": "limit", "in": "query", "required": false, "description": "Listings that grow with the chain (providers, delegations, commitments, evidence, checkpoint submissions) answer one page: at most this many items (1-1000, default 100)", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
              {"name": "cursor", "in": "query", "required": false, "description": "Start after this item: the next_cursor (hex) of the previous page; a page whose next_cursor is null is the last", "schema": {"type": "string"}}
            ],
            "responses": {
              "200": {"description": "The module's JSON answer", "content": {"application/json": {"schema": {}}}},
              "400": {"$ref": "#/components/responses/Error"},
              "404": {"$ref": "#/components/responses/Error"}
            }
          }
        },
        "/openapi.json": {
          "get": {
            "summary": "This document",
            "operationId": "getOpenAPI",
            "responses": {"200": {"description": "OpenAPI 3.0 document", "content": {"application/json": {"schema": {"type": "object"}}}}}
          }
        },
        "/metrics": {
          "get": {
            "summary": "Prometheus metrics (ishtar_height, ishtar_round, ishtar_peers, ishtar_mempool_size, ishtar_allocated_bytes, ishtar_block_interval_seconds, ishtar_committed_transactions_total, ishtar_btc_light_client_height, ishtar_btc_finalized_height, ishtar_checkpoint_last_finalized_epoch, ishtar_finality_equivocations_total, ishtar_finality_jailings_total, ishtar_p2p_inbound_overflows_total, ishtar_p2p_misbehaving_peers_total)",
            "operationId": "getMetrics",
            "responses": {"200": {"description": "Prometheus text exposition 0.0.4", "content": {"text/plain": {"schema": {"type": "string"}}}}}
          }
        }
      },
      "components": {
        "securitySchemes": {
          "bearerAuth": {"type": "http", "scheme": "bearer", "description": "Required on POST /txs only when the node is configured with a token."}
        },
        "responses": {
          "Error": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        },
        "schemas": {
          "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
              "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                  "code": {"type": "string", "description": "Stable machine code, e.g. invalid_height, block_not_found, route_not_found"},
                  "message": {"type": "string"},
                  "codespace": {"type": "string", "description": "Query failures only"},
                  "query_code": {"type": "integer", "description": "Query failures only"}
                }
              }
            }
          },
          "NodeStatus": {
            "type": "object",
            "required": ["chain_id", "node_id", "height", "round", "latest_block_hash", "latest_block_time_ms", "app_hash", "peers", "mempool_size", "catching_up"],
            "properties": {
              "chain_id": {"type": "string"},
              "node_id": {"type": "string"},
              "validator_address": {"type": "string", "nullable": true},
              "height": {"type": "integer", "format": "int64"},
              "round": {"type": "integer"},
              "latest_block_hash": {"type": "string"},
              "latest_block_time_ms": {"type": "integer", "format": "int64"},
              "app_hash": {"type": "string"},
              "peers": {"type": "integer"},
              "mempool_size": {"type": "integer"},
              "catching_up": {"type": "boolean", "description": "true while the node takes certified blocks from peers instead of deciding them: one was served in the last 3 s, or the peer that served the last one claims a height beyond the next"},
              "btc_light_client_height": {"type": "integer", "format": "int64", "description": "The BTC light client's main-chain tip height (absent on a chain without the light client)"},
              "btc_finalized_height": {"type": "integer", "format": "int64", "description": "The last height finalized by BTC-staked finality votes (absent until the first)"},
              "last_finalized_epoch": {"type": "integer", "format": "int64", "description": "The last epoch whose checkpoint is FINALIZED on Bitcoin (0 while none is)"}
            }
          },
          "NodeHealth": {
            "type": "object",
            "required": ["healthy", "reasons"],
            "properties": {"healthy": {"type": "boolean"}, "reasons": {"type": "array", "items": {"type": "string"}}}
          },
          "CommitSignature": {
            "type": "object",
            "properties": {"address": {"type": "string"}, "signature": {"type": "string"}}
          },
          "LastCommit": {
            "type": "object",
            "properties": {
              "height": {"type": "integer", "format": "int64"},
              "round": {"type": "integer"},
              "block_hash": {"type": "string"},
              "signature_count": {"type": "integer"},
              "signatures": {"type": "array", "items": {"$ref": "#/components/schemas/CommitSignature"}}
            }
          },
          "BlockHeader": {
            "type": "object",
            "properties": {
              "chain_id": {"type": "string"},
              "height": {"type": "integer", "format": "int64"},
              "time_ms": {"type": "integer", "format": "int64"},
              "previous_block_hash": {"type": "string"},
              "transactions_root": {"type": "string"},
              "app_hash": {"type": "string"},
              "proposer": {"type": "string"},
              "validators_hash": {"type": "string"},
              "last_commit": {"allOf": [{"$ref": "#/components/schemas/LastCommit"}], "nullable": true}
            }
          },
          "TxSummary": {
            "type": "object",
            "properties": {
              "chain_id": {"type": "string"},
              "sender": {"type": "string"},
              "nonce": {"type": "integer", "format": "int64"},
              "message_types": {"type": "array", "items": {"type": "string"}}
            }
          },
          "BlockTransaction": {
            "type": "object",
            "properties": {
              "hash": {"type": "string"},
              "bytes": {"type": "string"},
              "decoded": {"allOf": [{"$ref": "#/components/schemas/TxSummary"}], "nullable": true}
            }
          },
          "Block": {
            "type": "object",
            "properties": {
              "hash": {"type": "string"},
              "header": {"$ref": "#/components/schemas/BlockHeader"},
              "tx_count": {"type": "integer"},
              "transactions": {"type": "array", "items": {"$ref": "#/components/schemas/BlockTransaction"}}
            }
          },
          "Event": {
            "type": "object",
            "properties": {
              "type": {"type": "string"},
              "attributes": {"type": "array", "items": {"type": "object", "properties": {"key": {"type": "string"}, "value": {"type": "string"}}}}
            }
          },
          "TxResult": {
            "type": "object",
            "properties": {
              "code": {"type": "integer"},
              "codespace": {"type": "string"},
              "rule": {"type": "string"},
              "log": {"type": "string"},
              "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}
            }
          },
          "AccountNonce": {
            "type": "object",
            "properties": {
              "account": {"type": "string"},
              "committed_nonce": {"type": "string", "description": "decimal"},
              "pending_transactions": {"type": "integer"},
              "next_nonce": {"type": "string", "description": "decimal; use it for the next transaction"}
            }
          },
          "CommittedTransaction": {
            "type": "object",
            "properties": {
              "hash": {"type": "string"},
              "bytes": {"type": "string"},
              "height": {"type": "integer", "format": "int64"},
              "index": {"type": "integer"},
              "result": {"$ref": "#/components/schemas/TxResult"},
              "decoded": {"allOf": [{"$ref": "#/components/schemas/TxSummary"}], "nullable": true}
            }
          },
          "SubmitRequest": {
            "type": "object",
            "required": ["tx"],
            "properties": {"tx": {"type": "string", "description": "The signed transaction's canonical encoding, hex"}}
          },
          "SubmitResult": {
            "type": "object",
            "required": ["hash", "accepted", "code", "codespace", "rule", "log"],
            "properties": {
              "hash": {"type": "string"},
              "accepted": {"type": "boolean"},
              "code": {"type": "integer"},
              "codespace": {"type": "string"},
              "rule": {"type": "string"},
              "log": {"type": "string"}
            }
          }
        }
      }
    }
    """#
}
