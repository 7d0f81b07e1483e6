"""The OpenAPI 3.0 description of every endpoint (served at /openapi.json)."""

from __future__ import annotations

import functools
from typing import Any

from sync import schema

JSON = "application/json"
UUID = {"type": "string", "format": "uuid"}
COUNT = {"type": "integer", "minimum": 0}
SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
ERROR_TEXT = {
    400: "Malformed request",
    401: "No, unknown, expired or revoked token",
    403: "Out of scope",
    404: "Not found",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported Content-Encoding (gzip and identity are read)",
    408: "The request body stalled",
    422: "Invalid content",
    429: "Throttled (see Retry-After)",
    503: "Database unavailable (see Retry-After)",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


def _json(schema_: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema_}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): _json(_ref("Error"), ERROR_TEXT[s]) for s in (400, *statuses, 503)}


BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
AUTH_ERRORS = (401,)

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": _obj(
                ["code", "message"],
                code={"type": "string"},
                message={"type": "string"},
                field={"type": "string"},
            ),
            "wipe": {"type": "boolean"},
        },
    },
    "User": _obj(
        ["id", "username", "role", "teams"],
        id=UUID,
        username={"type": "string"},
        role={"type": "string", "enum": ["liaison", "supervisor", "admin"]},
        teams={"type": "array", "items": _obj(["id", "name"], id=UUID, name={"type": "string"})},
    ),
    "Enrolment": _obj(
        ["username", "password", "device_name"],
        username={"type": "string", "maxLength": 64},
        password={"type": "string", "maxLength": 200},
        device_name={"type": "string", "minLength": 1, "maxLength": 100},
        device_token={
            "type": "string",
            "maxLength": 200,
            "description": "This phone's earlier token, even expired: its sign-in "
            "attempts are then throttled apart from strangers'",
        },
    ),
    "Device": _obj(
        ["id", "name", "created_at", "last_used_at", "revoked_at"],
        id=UUID,
        name={"type": "string"},
        created_at={"type": "number"},
        last_used_at={"type": "number"},
        revoked_at={"type": "number", "nullable": True},
    ),
    "UserDetail": {
        "allOf": [
            _ref("User"),
            _obj(
                ["disabled", "devices"],
                disabled={"type": "boolean"},
                devices={"type": "array", "items": _ref("Device")},
            ),
        ]
    },
    "UserSummary": {
        "allOf": [
            _ref("User"),
            _obj(
                ["disabled", "active_devices"], disabled={"type": "boolean"}, active_devices=COUNT
            ),
        ]
    },
    "NewUser": _obj(
        ["username", "password", "role"],
        username={"type": "string", "maxLength": 64},
        password={"type": "string", "minLength": 8, "maxLength": 200},
        role={"type": "string", "enum": ["liaison", "supervisor", "admin"]},
        team_ids={"type": "array", "items": UUID},
    ),
    "Team": _obj(["id", "name"], id=UUID, name={"type": "string"}),
    "Enrolled": _obj(
        ["device_id", "token", "user"], device_id=UUID, token={"type": "string"}, user=_ref("User")
    ),
    "Me": {
        "allOf": [
            _ref("User"),
            _obj(
                ["device"],
                device=_obj(
                    ["id", "name", "created_at", "last_mutation_id"],
                    id=UUID,
                    name={"type": "string"},
                    created_at={"type": "number"},
                    last_mutation_id=COUNT,
                ),
            ),
        ]
    },
    "Mutation": _obj(
        ["id", "record_id", "type", "op"],
        id={"type": "integer", "minimum": 1},
        record_id=UUID,
        type={"type": "string", "enum": sorted(schema.TYPES)},
        op={"type": "string", "enum": ["upsert", "delete"]},
        fields={"type": "object"},
        clock={"type": "object", "additionalProperties": {"type": "string"}},
        base_rev={**COUNT, "nullable": True},
    ),
    "PushRequest": _obj(["mutations"], mutations={"type": "array", "items": _ref("Mutation")}),
    "Result": _obj(
        ["id", "status", "rev", "conflicts", "error"],
        id={"type": "integer"},
        status={"type": "string", "enum": ["applied", "merged", "rejected"]},
        rev={**COUNT, "nullable": True},
        conflicts={"type": "array", "items": {"type": "object"}},
        error={
            **_obj(
                ["code", "message"],
                code={"type": "string"},
                message={"type": "string"},
                field={"type": "string", "nullable": True},
            ),
            "nullable": True,
        },
    ),
    "PushResponse": _obj(
        ["last_mutation_id", "results"],
        last_mutation_id=COUNT,
        results={"type": "array", "items": _ref("Result")},
    ),
    "Record": _obj(
        ["id", "type", "fields", "clock", "rev", "deleted"],
        id=UUID,
        type={"type": "string"},
        fields={"type": "object"},
        clock={"type": "object", "additionalProperties": {"type": "string"}},
        rev=COUNT,
        deleted={"type": "boolean"},
    ),
    "PullResponse": _obj(
        ["records", "purge", "cursor", "more", "last_mutation_id"],
        records={"type": "array", "items": _ref("Record")},
        purge={"type": "array", "items": UUID},
        cursor=COUNT,
        more={"type": "boolean"},
        last_mutation_id=COUNT,
        conflicts={
            "type": "array",
            "items": _ref("LostValue"),
            "description": "Values written by the caller's devices that a later "
            "push beat in this page's rev window",
        },
    ),
    "LostValue": _obj(
        [
            "record_id",
            "type",
            "field",
            "value",
            "clock",
            "lost_value",
            "lost_clock",
            "incoming_won",
        ],
        record_id=UUID,
        type={"type": "string"},
        field={"type": "string"},
        value={},
        clock={"type": "string"},
        lost_value={},
        lost_clock={"type": "string"},
        incoming_won={"type": "boolean"},
    ),
    "Stored": _obj(["sha256", "size"], sha256=SHA256, size=COUNT),
}


def _paths() -> dict[str, Any]:
    sha_param = {"name": "sha256", "in": "path", "required": True, "schema": SHA256}
    return {
        "/healthz": {
            "get": {
                "summary": "Liveness probe",
                "security": [],
                "responses": {"200": _json(_obj(["status"], status={"type": "string"}), "OK")},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness probe: the database answers",
                "security": [],
                "responses": {
                    "200": _json(_obj(["status"], status={"type": "string"}), "Ready"),
                    "503": _json(_ref("Error"), ERROR_TEXT[503]),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This description",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "OpenAPI document")},
            }
        },
        "/api/v1/devices": {
            "post": {
                "summary": "Sign in and enrol a device",
                "security": [],
                "requestBody": {"required": True, "content": {JSON: {"schema": _ref("Enrolment")}}},
                "responses": {
                    "201": _json(_ref("Enrolled"), "Enrolled"),
                    **_errors(401, 408, 409, 413, 415, 422, 429),
                },
            }
        },
        **_admin_paths(),
        "/api/v1/patients/{patient_id}/merge": {
            "post": {
                "summary": "Merge a duplicate patient into another of the same team",
                "parameters": [
                    {"name": "patient_id", "in": "path", "required": True, "schema": UUID}
                ],
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _obj(["into"], into=UUID)}},
                },
                "responses": {
                    "200": _json(
                        _obj(
                            ["patient_id", "merged", "moved"],
                            patient_id=UUID,
                            merged=UUID,
                            moved=COUNT,
                            kept_from_duplicate={"type": "array", "items": {"type": "string"}},
                            differing={"type": "array", "items": {"type": "string"}},
                            already_merged={"type": "boolean"},
                        ),
                        "Merged (or merged already into the same patient)",
                    ),
                    **_errors(401, 404, 409, 413, 415, 422),
                },
            }
        },
        "/api/v1/devices/{device_id}": {
            "delete": {
                "summary": "Revoke a device (own, or any as admin)",
                "parameters": [
                    {"name": "device_id", "in": "path", "required": True, "schema": UUID}
                ],
                "responses": {"204": {"description": "Revoked"}, **_errors(401, 403, 404)},
            }
        },
        "/api/v1/me": {
            "get": {
                "summary": "The caller's user, role, teams and device",
                "responses": {"200": _json(_ref("Me"), "The caller"), **_errors(401)},
            }
        },
        "/api/v1/sync/push": {
            "post": {
                "summary": "Apply a batch of mutations",
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("PushRequest")}},
                },
                "responses": {
                    "200": _json(_ref("PushResponse"), "Per-mutation results"),
                    **_errors(401, 409, 413, 415, 422),
                },
            }
        },
        "/api/v1/sync/pull": {
            "get": {
                "summary": "Records in scope changed after the cursor",
                "parameters": [
                    {"name": "cursor", "in": "query", "schema": COUNT},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                ],
                "responses": {"200": _json(_ref("PullResponse"), "One page"), **_errors(401)},
            }
        },
        "/api/v1/attachments/{sha256}": {
            "put": {
                "summary": "Upload a photo or PDF by its sha256",
                "parameters": [sha_param],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
                "responses": {
                    "201": _json(_ref("Stored"), "Stored (whether or not it was before)"),
                    **_errors(401, 409, 413, 422, 429),
                },
            },
            "get": {
                "summary": "Download an attachment a visible record refers to",
                "parameters": [sha_param],
                "responses": {
                    "200": {
                        "description": "The bytes",
                        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    **_errors(401, 404),
                },
            },
        },
    }


def _admin(
    summary: str,
    ok: dict[str, Any],
    body: dict[str, Any] | None = None,
    *errors: int,
    params: tuple[str, ...] = (),
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary + " (admins only)",
        "parameters": [{"name": p, "in": "path", "required": True, "schema": UUID} for p in params],
        "responses": {**ok, **_errors(401, 403, *errors)},
    }
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    return operation


def _admin_paths() -> dict[str, Any]:
    user = ("user_id",)
    detail = {"200": _json(_ref("UserDetail"), "The user")}
    done = {"204": {"description": "Done"}}
    return {
        "/api/v1/users": {
            "get": _admin(
                "Every user",
                {
                    "200": _json(
                        _obj(["users"], users={"type": "array", "items": _ref("UserSummary")}),
                        "Users",
                    )
                },
            ),
            "post": _admin(
                "Add a user",
                {"201": _json(_ref("UserDetail"), "Added")},
                _ref("NewUser"),
                404,
                409,
                413,
                415,
                422,
            ),
        },
        "/api/v1/users/{user_id}": {
            "get": _admin("A user with their devices", detail, None, 404, params=user),
        },
        "/api/v1/users/{user_id}/disable": {
            "post": _admin(
                "Disable a user: no sign-in, every device revoked (they erase their data)",
                detail,
                None,
                404,
                params=user,
            ),
        },
        "/api/v1/users/{user_id}/enable": {
            "post": _admin("Let a disabled user sign in again", detail, None, 404, params=user),
        },
        "/api/v1/users/{user_id}/password": {
            "put": _admin(
                "Set a new password, optionally revoking every device",
                done,
                _obj(
                    ["password"],
                    password={"type": "string", "minLength": 8, "maxLength": 200},
                    revoke_devices={"type": "boolean"},
                ),
                404,
                413,
                415,
                422,
                params=user,
            ),
        },
        "/api/v1/users/{user_id}/role": {
            "put": _admin(
                "Change a user's role",
                detail,
                _obj(["role"], role={"type": "string", "enum": ["liaison", "supervisor", "admin"]}),
                404,
                413,
                415,
                422,
                params=user,
            ),
        },
        "/api/v1/users/{user_id}/teams/{team_id}": {
            "put": _admin(
                "Add a user to a team", done, None, 404, 409, params=("user_id", "team_id")
            ),
            "delete": _admin(
                "Remove a user from a team (their devices purge its patients)",
                done,
                None,
                404,
                params=("user_id", "team_id"),
            ),
        },
        "/api/v1/teams": {
            "get": _admin(
                "Every team",
                {
                    "200": _json(
                        _obj(["teams"], teams={"type": "array", "items": _ref("Team")}), "Teams"
                    )
                },
            ),
            "post": _admin(
                "Add a team",
                {"201": _json(_ref("Team"), "Added")},
                _obj(["name"], name={"type": "string", "minLength": 1, "maxLength": 100}),
                409,
                413,
                415,
                422,
            ),
        },
    }


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The whole OpenAPI document."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "Liaison sync API", "version": "1"},
        "paths": _paths(),
        "security": BEARER,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
