"""Schemathesis against the live server's own spec: requests made from /openapi.json, every answer checked
against it (no 5xx, every status code and body as documented).

One check is left out: that schema-valid data is accepted. The spec can say "a base64 string" but not "a
base64 string of an image", so most generated bodies are rightly refused with a documented 400."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def operations(server):
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    return {op.label: op for op in (result.ok() for result in schema.get_all_operations())}


OPERATIONS = ["POST /api/v1/predict", "POST /api/v1/predict/batch", "POST /api/v1/read", "GET /api/v1/health",
              "POST /api/v1/corrections", "GET /api/v1/review", "POST /api/v1/review/{ident}",
              "POST /api/v1/review/merge"]


def test_the_spec_lists_every_operation(operations):
    assert sorted(operations) == sorted(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_every_answer_is_as_documented(operations, label):
    operation = operations[label]

    @given(case=operation.as_strategy())
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    check()
