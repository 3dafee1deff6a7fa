"""Fuzzing the gateway's HTTP contract: schemathesis generates requests from the served
`/openapi.json` (valid and invalid ones) against the real gateway on a free port, with Redis real
and the dialogue engine down (the chat then answers 503 with a body, which is in the contract).

Every operation must answer without a server error and with a status code, content type and body
that the schema declares. Without a staff session or a conversation token the answers are 401,
403 or 422: those must be declared too. Derandomized and bounded, so CI is stable and quick.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from conftest import gateway_settings, serving
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from indgang.settings import Settings
from webhook.schemas import MAX_METADATA_CHARS

EXAMPLES_PER_OPERATION = 100


@pytest.fixture(scope="module")
def fuzzed_gateway(base_settings: Settings) -> Iterator[str]:
    # Its own gateway, so the fuzzer's conversations and rate-limit counters meet no other test's.
    with serving(gateway_settings(base_settings)) as url:
        yield url


@pytest.fixture(scope="module")
def api_schema(fuzzed_gateway: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzzed_gateway}/openapi.json")


def _small_metadata(case: schemathesis.Case) -> bool:
    metadata = case.body.get("metadata", {}) if isinstance(case.body, dict) else {}
    return len(json.dumps(metadata, default=str)) <= MAX_METADATA_CHARS


def keeps_contract(operation: schemathesis.APIOperation) -> None:
    """Generated requests for one operation; raises what schemathesis and hypothesis found."""
    declared = set(operation.definition.raw["responses"])

    # Valid requests and invalid ones (each must be refused with a declared 4xx, never a crash).
    # The chat's metadata is limited by its size as JSON, which JSON Schema cannot say: a "valid"
    # request must also keep to that documented limit.
    valid = operation.as_strategy(schemathesis.GenerationMode.POSITIVE).filter(_small_metadata)
    invalid = operation.as_strategy(schemathesis.GenerationMode.NEGATIVE)

    @given(case=st.one_of(valid, invalid))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        # schemathesis's checks: a declared status code and content type, a body matching the
        # declared schema. A 5xx passes only as a 503 the operation declares (the engine or a
        # dependency is down, as here: /readyz and the chat say so in a declared body).
        response = case.call_and_validate(timeout=30, excluded_checks=[not_a_server_error])
        assert response.status_code < 500 or (response.status_code == 503 and "503" in declared), (
            f"{response.status_code} from {case.method} {case.formatted_path}: {response.text[:300]}"
        )

    check()


def test_every_operation_keeps_its_contract(api_schema: schemathesis.BaseSchema) -> None:
    failures: dict[str, str] = {}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20  # the whole contract is fuzzed, not a schema that failed to load
    for operation in operations:
        try:
            keeps_contract(operation)
        except (AssertionError, BaseExceptionGroup) as failure:  # every operation is tried
            failures[operation.label] = str(failure)
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


# --- what the fuzzer found, each pinned by a direct request ---


def test_a_body_that_is_not_utf8_is_a_declared_422(fuzzed_gateway: str) -> None:
    response = httpx.post(
        f"{fuzzed_gateway}/api/v1/chat",
        content=b'{"text": "\xff\xfe"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422  # was FastAPI's undeclared 400
    assert response.json()["detail"][0]["loc"] == ["body"]


def test_a_blank_offer_query_is_refused_in_the_schema_and_with_its_validation_body(
    fuzzed_gateway: str,
) -> None:
    q = httpx.get(f"{fuzzed_gateway}/openapi.json").json()["paths"]["/api/v1/offers"]["get"]
    declared = next(p for p in q["parameters"] if p["name"] == "q")["schema"]
    assert declared["pattern"] == r"\S"  # was: any string, so a valid request got a 422
    for blank in ("", "   "):
        response = httpx.get(f"{fuzzed_gateway}/api/v1/offers", params={"q": blank})
        assert response.status_code == 422
        assert {"loc", "msg", "type"} <= response.json()["detail"][0].keys()  # "type" was missing


def test_the_schema_declares_the_errors_the_gateway_answers(fuzzed_gateway: str) -> None:
    paths = httpx.get(f"{fuzzed_gateway}/openapi.json").json()["paths"]
    staff = paths["/api/v1/staff/conversations/{conversation_id}/takeover"]["post"]["responses"]
    assert {"401", "403", "409"} <= staff.keys()
    assert httpx.post(f"{fuzzed_gateway}/api/v1/staff/conversations/x/takeover").status_code == 401
    export = paths["/api/v1/chat/{conversation_id}/export"]["get"]["responses"]["403"]["content"]
    assert "application/json" in export  # was declared as text/plain
    assert "503" in paths["/readyz"]["get"]["responses"]
    assert httpx.get(f"{fuzzed_gateway}/readyz").status_code == 503  # the engine is down here
