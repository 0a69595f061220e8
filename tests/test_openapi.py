"""GET /openapi.json: a valid OpenAPI 3.1 document of every call the server dispatches, then the running
server fuzzed from it with schemathesis: no 5xx, every reply an envelope whose HTTP status is result_code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import msgpack
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from workerhub import Settings
from workerhub.api.endpoints import ENDPOINTS
from workerhub.api.openapi import openapi_document
from workerhub.api.schemas import SCHEMAS
from workerhub.testing import ServerHandle, running_server


def test_every_dispatched_call_has_a_schema_and_no_schema_is_stray() -> None:
    assert set(ENDPOINTS) == set(SCHEMAS), set(ENDPOINTS) ^ set(SCHEMAS)


def test_openapi_json_is_a_valid_openapi_3_1_document_of_every_call(hub_server: ServerHandle) -> None:
    r = httpx.get(hub_server.url + "/openapi.json", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    validate(doc)  # openapi-spec-validator: raises on any error
    assert doc["openapi"].startswith("3.1")
    calls = {path[1:] for path, item in doc["paths"].items() if "post" in item}
    assert calls == set(ENDPOINTS)
    register = doc["paths"]["/workers.register"]["post"]
    body = register["requestBody"]["content"]["application/json"]["schema"]
    assert {"tags", "system_tags", "resources"} <= set(body["properties"]), "fields of API 2.5-2.34 documented"
    get_all = doc["paths"]["/workers.get_all"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"tags", "system_tags", "worker_pattern"} <= set(get_all["properties"])
    assert {"400", "401", "404", "413", "500", "503"} <= set(register["responses"])
    assert {"/livez", "/readyz", "/metrics", "/openapi.json"} <= set(doc["paths"])


def test_credentials_mode_documents_required_auth() -> None:
    with running_server(auth=("alice:a-secret-key",), metrics_port=0) as server:
        doc = httpx.get(server.url + "/openapi.json", timeout=10).json()
    validate(doc)
    assert doc["paths"]["/workers.get_all"]["post"]["security"] == [{"bearer": []}, {"basic": []}]
    assert doc["paths"]["/debug.ping"]["post"]["security"] == [{}]
    assert "/metrics" not in doc["paths"], "served on its own port"


# --- fuzzing ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[ServerHandle]:
    """A server of its own (testing mode, so debug.advance_clock and debug.reset are fuzzed too)."""
    with running_server(msgpack_port=None) as server:
        yield server


# The document the fuzzed server serves, made in process so that pytest can collect one test per operation
# before any server runs; test_the_fuzzed_document_is_the_served_one checks that they are the same.
FUZZ_SETTINGS = Settings(testing=True, persist=False)
FUZZ_DOC = openapi_document(FUZZ_SETTINGS)


def test_the_fuzzed_document_is_the_served_one(fuzz_server: ServerHandle) -> None:
    assert httpx.get(fuzz_server.url + "/openapi.json", timeout=10).json() == FUZZ_DOC


def envelope_status_is_result_code(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every reply of a call is a ClearML envelope: HTTP status = meta.result_code, data an object."""
    if "." not in case.path or case.path == "/openapi.json" or case.method.upper() in ("OPTIONS", "HEAD"):
        return None  # the operations paths (plain text), and the body-less methods (OPTIONS: an empty 200)
    media = response.headers.get("content-type", [""])
    media = media[0] if isinstance(media, list) else media
    if media.startswith("application/vnd.msgpack"):
        reply = msgpack.unpackb(response.content, raw=False)
    else:
        assert media.startswith("application/json"), media
        reply = response.json()
    assert isinstance(reply, dict) and set(reply) >= {"meta", "data"}, reply
    assert reply["meta"]["result_code"] == response.status_code, (response.status_code, reply["meta"])
    assert isinstance(reply["data"], dict)
    if response.status_code != 200:
        assert reply["data"] == {}
    return True


@schemathesis.serializer("application/vnd.msgpack")
def _msgpack(ctx: Any, value: Any) -> bytes:
    try:
        return bytes(msgpack.packb(value, use_bin_type=True))
    except (OverflowError, TypeError, ValueError):
        return b"\xc1"  # an int beyond 64 bits: send the byte msgpack never uses, a garbage body


fuzz = schemathesis.openapi.from_dict(FUZZ_DOC)


@fuzz.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure here is reproducible, not flaky
    suppress_health_check=list(HealthCheck),
)
def test_fuzz_the_running_server_from_its_own_document(case: Any, fuzz_server: ServerHandle) -> None:
    case.call_and_validate(
        base_url=fuzz_server.url,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
            envelope_status_is_result_code,
        ],
    )


@pytest.mark.parametrize("method", ["DELETE", "PATCH", "TRACE", "QUERY"])
def test_other_methods_get_a_405_envelope(hub_server: ServerHandle, method: str) -> None:
    r = httpx.request(method, hub_server.url + "/workers.get_all", json={}, timeout=10)
    assert r.status_code == 405 and "POST" in r.headers["allow"]
    meta = r.json()["meta"]
    assert (meta["result_code"], meta["result_subcode"]) == (405, 0)
    assert method in meta["result_msg"]


def test_a_clock_jump_beyond_ten_years_is_refused(hub_server: ServerHandle) -> None:
    # Found by the fuzzing: 1e18 s left the server spinning (a float clock that large has no milliseconds).
    for seconds in (1e18, 1e300, 10 * 365 * 86400 + 1):
        r = httpx.post(hub_server.url + "/debug.advance_clock", json={"seconds": seconds}, timeout=10)
        meta = r.json()["meta"]
        assert (r.status_code, meta["result_subcode"]) == (400, 12) and "seconds" in meta["result_msg"]
    assert httpx.post(hub_server.url + "/debug.ping", json={}, timeout=10).status_code == 200
