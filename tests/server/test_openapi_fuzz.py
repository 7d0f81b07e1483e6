"""Schemathesis over /openapi.json, in-process: no 5xx, and answers as documented."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from server.app import ROUTES, create_app
from server.service import Service
from tests.server.conftest import PASSWORD

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(params=["alice", "root"])
def api(request, database, settings, clock, org):
    """The schema of an app with one enrolled device: a liaison's, then an admin's."""
    enrolled = Service(settings, database, clock).enrol(request.param, PASSWORD, "fuzz", "10.9.9.9")
    app = create_app(settings, database, clock=clock)
    app.state.fuzz_headers = {"Authorization": f"Bearer {enrolled['token']}"}
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation(api, mode):
    headers = api.app.state.fuzz_headers
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) == len(ROUTES) - 1  # all but /openapi.json itself

    for operation in operations:
        if mode == GenerationMode.NEGATIVE and operation.label in ("GET /healthz", "GET /readyz"):
            continue  # no input to get wrong

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        run()
