"""OpenAPI links between the gateway's operations, for schemathesis' stateful fuzzing.

The gateway's /openapi.json has no links of its own; these say which answer
feeds which next call (a key just written, a sector just listed).
"""

from __future__ import annotations

from typing import Any

# Roots of the sequences are POSTs and list GETs, so the key operations hang off mset and mget.
FIRST_ITEM = "$request.body#/items/0/key"
LINKS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("/api/v1/cache/mset", "post"): {
        "ReadFirst": {"operationId": "CacheService_Get", "parameters": {"key": FIRST_ITEM}},
        "OverwriteFirst": {"operationId": "CacheService_Set", "parameters": {"key": FIRST_ITEM}},
        "DeleteFirst": {"operationId": "CacheService_Delete", "parameters": {"key": FIRST_ITEM}},
        "ReadBack": {
            "operationId": "CacheService_MGet",
            "requestBody": {"keys": [FIRST_ITEM, "$request.body#/items/1/key"]},
        },
    },
    ("/api/v1/cache/mget", "post"): {
        "WriteFirst": {
            "operationId": "CacheService_Set",
            "parameters": {"key": "$response.body#/results/0/key"},
        },
    },
    ("/api/v1/cache/keys/{key}", "put"): {
        "ReadIt": {"operationId": "CacheService_Get", "parameters": {"key": "$request.path.key"}},
        "DeleteIt": {
            "operationId": "CacheService_Delete",
            "parameters": {"key": "$request.path.key"},
        },
        "ItsOwner": {
            "operationId": "CacheService_GetOwnership",
            "parameters": {"prefix": "$request.path.key"},
        },
    },
    ("/api/v1/cache/keys/{key}", "get"): {
        "WriteIt": {
            "operationId": "CacheService_Set",
            "parameters": {"key": "$response.body#/key"},
        },
    },
    ("/api/v1/cache/keys/{key}", "delete"): {
        "ReadIt": {"operationId": "CacheService_Get", "parameters": {"key": "$request.path.key"}},
    },
    ("/api/v1/cache/owners", "get"): {
        "OneOwner": {
            "operationId": "CacheService_GetOwnership",
            "parameters": {"prefix": "$response.body#/owners/0/prefix"},
        },
        "ClearIt": {
            "operationId": "CacheService_Clear",
            "parameters": {"prefix": "$response.body#/owners/0/prefix"},
        },
    },
    ("/api/v1/sectors", "get"): {
        "OneSector": {
            "operationId": "SectorService_GetSectorData",
            "parameters": {"symbol": "$response.body#/sectors/0/symbol"},
        },
    },
    ("/api/v1/sectors/snapshot", "get"): {
        "BestSector": {
            "operationId": "SectorService_GetSectorData",
            "parameters": {"symbol": "$response.body#/ranking/0"},
        },
    },
    ("/api/v1/sectors/cache/warm", "post"): {
        "WarmedSector": {
            "operationId": "SectorService_GetSectorData",
            "parameters": {"symbol": "$response.body#/symbols/0"},
        },
    },
    ("/api/v1/market/quotes/{symbol}", "get"): {
        "History": {
            "operationId": "MarketDataService_GetHistory",
            "parameters": {"symbol": "$response.body#/quote/symbol"},
        },
        "News": {
            "operationId": "MarketDataService_GetNews",
            "parameters": {"symbol": "$response.body#/quote/symbol"},
        },
    },
    ("/api/v1/market/quotes", "get"): {
        "First": {
            "operationId": "MarketDataService_GetQuote",
            "parameters": {"symbol": "$response.body#/results/0/symbol"},
        },
    },
}
