"""auth.login and token checks, over real HTTP, in open and credentials mode (wire §3, §4).

Token lifetimes are tested by moving the server's clock (``advance_clock``) or by crafting tokens with PyJWT
and the server's configured secret; nothing sleeps.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from workerhub.api.auth import TOKEN_LIFETIME, Authenticator, parse_credentials
from workerhub.config import Settings, SettingsError
from workerhub.messages import DEFAULT_IDENTITY, Identity
from workerhub.testing import ServerHandle, running_server

from .support import APIS, JsonApi

SECRET = "test-secret-" + "x" * 64
CREDENTIALS = ("alice-key:alice-secret:acme:alice", "bob-key:bob-secret:acme", "plain-key:plain-secret")
REPORT = {"worker": "w1", "timestamp": 1_700_000_000_000, "machine_stats": {"cpu_usage": [10]}}


def basic(key: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


def bearer(token: str) -> str:
    return "Bearer " + token


@pytest.fixture(scope="module")
def cred_server() -> Iterator[ServerHandle]:
    with running_server(auth=CREDENTIALS, token_secret=SECRET) as handle:
        yield handle


@pytest.fixture(scope="module")
def open_secret_server() -> Iterator[ServerHandle]:
    """Open mode with a known secret, so tests can craft valid tokens for any identity."""
    with running_server(token_secret=SECRET) as handle:
        yield handle


def _api(handle: ServerHandle, codec: str) -> Iterator[JsonApi]:
    handle.reset()
    with httpx.Client(base_url=handle.url, timeout=10) as client:
        yield APIS[codec](client)


@pytest.fixture(params=list(APIS))
def cred(request: pytest.FixtureRequest, cred_server: ServerHandle) -> Iterator[JsonApi]:
    yield from _api(cred_server, request.param)


@pytest.fixture(params=list(APIS))
def open_api(request: pytest.FixtureRequest, open_secret_server: ServerHandle) -> Iterator[JsonApi]:
    yield from _api(open_secret_server, request.param)


def login(api: JsonApi, authorization: str | None = None, path: str = "/auth.login") -> httpx.Response:
    """A login as the clients send it: GET, no body, no content type."""
    if not isinstance(api, JsonApi):
        pytest.skip("auth.login is an HTTP call with a Basic header (the stream is tested in test_stream.py)")
    headers = {"Authorization": authorization} if authorization else {}
    return api.client.get(path, headers=headers)


def token_of(api: JsonApi, key: str = "alice-key", secret: str = "alice-secret") -> str:
    r = login(api, basic(key, secret))
    assert r.status_code == 200, r.text
    return r.json()["data"]["token"]


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def craft(payload: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    base = {
        "identity": {"company": "acme", "user": "alice", "company_name": "acme", "user_name": "alice"},
        "iat": 1_000_000_000,
        "exp": 4_000_000_000,
    }
    return jwt.encode({**base, **payload}, secret, algorithm=algorithm)


def code(api: JsonApi, name: str, authorization: str | None, body: Any = None) -> tuple[int, int]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return api.call(name, body or {}, headers=headers).code


# --- the token ------------------------------------------------------------------------------------------


def test_token_carries_what_the_clients_read(cred: JsonApi) -> None:
    r = login(cred, basic("alice-key", "alice-secret"))
    assert r.status_code == 200
    reply = r.json()
    assert reply["meta"]["endpoint"]["name"] == "auth.login"
    token = reply["data"]["token"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    c = jwt.decode(token, SECRET, algorithms=["HS256"])  # really signed with the configured secret
    assert c["api_version"] == "2.23" and c["feature_set"] == "basic"
    assert isinstance(c["server_version"], str) and c["server_version"]
    assert c["identity"] == {
        "company": "acme",
        "company_name": "acme",
        "user": "alice",
        "user_name": "alice",
        "role": "user",
    }
    assert isinstance(c["iat"], int) and c["exp"] - c["iat"] == TOKEN_LIFETIME == 30 * 86400


@pytest.mark.parametrize("path", ["/auth.login", "/auth.login/", "/v2.23/auth.login", "/v1.0/auth.login"])
def test_login_versioned_or_not(cred: JsonApi, path: str) -> None:
    r = login(cred, basic("alice-key", "alice-secret"), path)
    assert r.status_code == 200, r.text
    assert "token" in r.json()["data"]


def test_login_by_post_with_a_body_and_expiration(cred: JsonApi) -> None:
    r = cred.client.post(
        "/auth.login?expiration_sec=3600",
        json={"method": "get"},
        headers={"Authorization": basic("alice-key", "alice-secret")},
    )
    c = claims(r.json()["data"]["token"])
    assert c["exp"] - c["iat"] == 3600


def test_default_company_and_user(cred: JsonApi) -> None:
    assert claims(token_of(cred, "bob-key", "bob-secret"))["identity"]["user"] == "bob-key"
    ident = claims(token_of(cred, "plain-key", "plain-secret"))["identity"]
    assert (ident["company"], ident["user"]) == (DEFAULT_IDENTITY.company, "plain-key")


def test_bearer_login_renews_the_token(cred: JsonApi, cred_server: ServerHandle) -> None:
    old = token_of(cred)
    cred_server.advance_clock(10)
    r = login(cred, bearer(old))
    assert r.status_code == 200, r.text
    new = r.json()["data"]["token"]
    assert claims(new)["identity"] == claims(old)["identity"]
    assert claims(new)["exp"] >= claims(old)["exp"] + 10


# --- credentials mode: errors exactly as wire §3 --------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (None, (401, 20)),
        ("", (401, 20)),
        (basic("alice-key", "wrong"), (401, 22)),
        (basic("nobody", "alice-secret"), (401, 22)),
        (basic("alice-key", ""), (401, 22)),
        ("Basic !!!not-base64!!!", (401, 21)),
        ("Basic " + base64.b64encode(b"no-colon").decode(), (401, 21)),
        ("Basic " + base64.b64encode(b":secret").decode(), (401, 21)),
        ("Digest username=alice", (401, 10)),
        ("alice-key:alice-secret", (401, 10)),
        ("Bearer", (401, 30)),
        ("Bearer not.a.jwt", (401, 30)),
    ],
)
def test_login_errors(cred: JsonApi, authorization: str | None, expected: tuple[int, int]) -> None:
    assert code(cred, "auth.login", authorization) == expected


WORKER_CALLS = [
    ("workers.register", {"worker": "w1"}),
    ("workers.unregister", {"worker": "w1"}),
    ("workers.status_report", REPORT),
    ("workers.get_all", {}),
    ("workers.get_metric_keys", {}),
    ("workers.get_stats", {"from_date": 1, "to_date": 2, "interval": 1, "items": [{"key": "cpu_usage"}]}),
    ("workers.get_activity_report", {"from_date": 1, "to_date": 2, "interval": 1}),
    ("debug.advance_clock", {"seconds": 0}),
]


@pytest.mark.parametrize(("name", "body"), WORKER_CALLS, ids=[n for n, _ in WORKER_CALLS])
def test_every_call_but_login_and_ping_needs_credentials(cred: JsonApi, name: str, body: Any) -> None:
    assert code(cred, name, None, body) == (401, 20)
    assert code(cred, name, "Token abc", body) == (401, 10)
    assert code(cred, name, bearer("garbage"), body) == (401, 30)
    assert code(cred, name, basic("alice-key", "wrong"), body) == (401, 22)
    reply = cred.call(name, body, headers={"Authorization": bearer(token_of(cred))})
    assert reply.status != 401, reply.meta


def test_ping_needs_nothing(cred: JsonApi) -> None:
    assert cred.call("debug.ping").ok
    assert cred.call("debug.ping", headers={"Authorization": "Bogus"}).ok


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(craft({}, secret="another-secret-" + "y" * 64), id="wrong-signature"),
        pytest.param(craft({"exp": 1_000_000_001}), id="expired"),
        pytest.param(craft({}, algorithm="HS512"), id="other-algorithm"),
        pytest.param(jwt.encode({"identity": {"company": "acme", "user": "alice"}}, SECRET), id="no-exp"),
        pytest.param(craft({"identity": None}), id="no-identity"),
        pytest.param(craft({"identity": {"company": "acme", "user": 3}}), id="bad-identity"),
        pytest.param(craft({"identity": {"company": "acme", "user": "mallory"}}), id="unknown-identity"),
        pytest.param(craft({"exp": "never"}), id="exp-not-a-number"),
        pytest.param(craft({})[:-4] + "AAAA", id="tampered"),
        pytest.param(
            jwt.encode(
                {"identity": {"company": "acme", "user": "alice"}, "exp": 4e9}, None, algorithm="none"
            ),
            id="alg-none",
        ),
    ],
)
def test_bad_tokens_are_401_30(cred: JsonApi, token: str) -> None:
    assert code(cred, "workers.get_all", bearer(token)) == (401, 30)


def test_crafted_token_with_the_right_secret_is_accepted(cred: JsonApi) -> None:
    assert cred.call("workers.get_all", {}, headers={"Authorization": bearer(craft({}))}).ok


def test_basic_credentials_work_on_any_call_as_upstream(cred: JsonApi) -> None:
    headers = {"Authorization": basic("alice-key", "alice-secret")}
    assert cred.call("workers.register", {"worker": "w1"}, headers=headers).ok
    workers = cred.call("workers.get_all", {}, headers=headers).data["workers"]
    assert [(w["id"], w["user"]["id"], w["company"]["id"]) for w in workers] == [("w1", "alice", "acme")]


def test_auth_is_checked_before_the_body(cred: JsonApi) -> None:
    garbage = {"Content-Type": "application/json"}
    r = cred.client.post("/workers.get_all", content=b"{not json", headers=garbage)
    assert (r.status_code, r.json()["meta"]["result_subcode"]) == (401, 20)
    r = cred.client.post(
        "/workers.get_all", content=b"{not json", headers={**garbage, "Authorization": "Bearer x"}
    )
    assert (r.status_code, r.json()["meta"]["result_subcode"]) == (401, 30)
    r = cred.client.post(
        "/workers.register", json={"worker": 5}, headers={"Authorization": bearer(token_of(cred))}
    )
    assert (r.status_code, r.json()["meta"]["result_subcode"]) == (400, 12)


def test_token_expires_on_the_server_clock_and_relogin_succeeds(
    cred: JsonApi, cred_server: ServerHandle
) -> None:
    """A client that gets 401 logs in again and its retry succeeds (what the SDK and agent do)."""
    token = token_of(cred)
    auth = {"Authorization": bearer(token)}
    assert cred.call("workers.register", {"worker": "w1", "timeout": 10**8}, headers=auth).ok
    # The server clock also runs at real speed and exp is whole seconds: leave a margin no machine load eats.
    cred_server.advance_clock(TOKEN_LIFETIME - 60)
    assert cred.call("workers.get_all", {"last_seen": 0}, headers=auth).ok
    cred_server.advance_clock(60)
    assert cred.call("workers.get_all", {"last_seen": 0}, headers=auth).code == (401, 30)
    fresh = {"Authorization": bearer(token_of(cred))}
    assert [
        w["id"] for w in cred.call("workers.get_all", {"last_seen": 0}, headers=fresh).data["workers"]
    ] == ["w1"]


def test_login_sets_a_strict_http_only_cookie(cred: JsonApi) -> None:
    r = login(cred, basic("alice-key", "alice-secret"))
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("workerhub_token=" + r.json()["data"]["token"])
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "set-cookie" not in login(cred, basic("alice-key", "wrong")).headers


def test_stale_bearer_falls_back_to_the_login_cookie(cred: JsonApi, cred_server: ServerHandle) -> None:
    """What the SDK and agent do on 401: log in again (new cookie), then retry with the *old* header."""
    stale = bearer(craft({"exp": 1_000_000_001}))
    assert code(cred, "workers.get_all", stale) == (401, 30)
    token_of(cred)  # the client's cookie jar now holds a fresh token
    assert cred.call("workers.register", {"worker": "w1"}, headers={"Authorization": stale}).ok
    workers = cred.call("workers.get_all", {}, headers={"Authorization": stale}).data["workers"]
    assert [(w["id"], w["user"]["id"]) for w in workers] == [("w1", "alice")]
    # The cookie never stands in for a missing header or other schemes, and an expired cookie is no help.
    assert code(cred, "workers.get_all", None) == (401, 20)
    assert code(cred, "workers.get_all", basic("alice-key", "wrong")) == (401, 22)
    cred_server.advance_clock(TOKEN_LIFETIME + 1)
    assert code(cred, "workers.get_all", stale) == (401, 30)


# --- open mode --------------------------------------------------------------------------------------------


def test_open_mode_needs_no_credentials(api: JsonApi) -> None:
    assert api.ok("workers.register", {"worker": "w1"}) == {}
    w = api.ok("workers.get_all")["workers"][0]
    assert (w["company"]["id"], w["user"]["id"]) == (DEFAULT_IDENTITY.company, DEFAULT_IDENTITY.user)


def test_open_mode_any_credentials_log_in_as_the_default_identity(api: JsonApi) -> None:
    for authorization in (None, basic("anyone", "anything"), basic("x", "")):
        r = login(api, authorization)
        assert r.status_code == 200, r.text
        ident = claims(r.json()["data"]["token"])["identity"]
        assert (ident["company"], ident["user"]) == (DEFAULT_IDENTITY.company, DEFAULT_IDENTITY.user)
    # A token from login sees the same workers as a call without one.
    api.ok("workers.register", {"worker": "w1"})
    token = login(api, basic("anyone", "anything")).json()["data"]["token"]
    reply = api.call("workers.get_all", {}, headers={"Authorization": bearer(token)})
    assert [w["id"] for w in reply.data["workers"]] == ["w1"]


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [("Bearer junk", (401, 30)), ("Negotiate abc", (401, 10)), ("Basic %%%", (401, 21))],
)
def test_open_mode_still_rejects_bad_headers(
    api: JsonApi, authorization: str, expected: tuple[int, int]
) -> None:
    """A stale or broken token must not silently become the default identity: the client re-logs in."""
    assert code(api, "workers.get_all", authorization) == expected


def test_open_mode_uses_a_valid_tokens_identity(open_api: JsonApi) -> None:
    acme = {"Authorization": bearer(craft({}))}
    assert open_api.call("workers.register", {"worker": "w1"}, headers=acme).ok
    assert open_api.ok("workers.get_all")["workers"] == []  # the default company sees nothing
    workers = open_api.call("workers.get_all", {}, headers=acme).data["workers"]
    assert [(w["company"]["id"], w["user"]["id"]) for w in workers] == [("acme", "alice")]
    assert code(open_api, "workers.get_all", bearer(craft({"exp": 1_000_000_001}))) == (401, 30)


# --- configuration ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["key", "key:", ":secret", "a:b:c:d:e", "a:b::d", " : "])
def test_malformed_credentials_are_refused(entry: str) -> None:
    with pytest.raises(SettingsError, match="auth"):
        parse_credentials((entry,))


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(SettingsError, match="twice"):
        parse_credentials(("k:a", "k:b"))


def test_secrets_are_not_echoed_in_errors() -> None:
    with pytest.raises(SettingsError) as info:
        parse_credentials(("k:topsecret:acme:u:extra",))
    assert "topsecret" not in str(info.value)


def test_auth_from_env_and_cli() -> None:
    settings = Settings.load(env={"WORKERHUB_AUTH": "a:b, c:d:acme:carol"})
    assert settings.auth == ("a:b", "c:d:acme:carol")
    creds = parse_credentials(settings.auth)
    assert creds["c"].identity == Identity("acme", "carol", "acme", "carol")
    assert creds["a"].identity.company == DEFAULT_IDENTITY.company

    from workerhub.cli import serve_settings

    assert serve_settings(["--auth", "a:b", "--auth", "c:d:acme"], env={}).auth == ("a:b", "c:d:acme")


def test_cli_refuses_bad_auth_before_serving(capsys: pytest.CaptureFixture[str]) -> None:
    from workerhub.cli import main

    assert main(["serve", "--port", "0", "--auth", "no-secret"]) == 2
    assert "KEY:SECRET" in capsys.readouterr().err


def test_cli_refuses_a_short_secret(capsys: pytest.CaptureFixture[str]) -> None:
    from workerhub.cli import main

    assert main(["serve", "--port", "0", "--token-secret", "short"]) == 2
    assert "token_secret" in capsys.readouterr().err


def test_random_secret_is_per_process_and_configured_one_is_used() -> None:
    class _Clock:
        def wall(self) -> float:
            return 1_700_000_000.0

    clock: Any = _Clock()
    random_a = Authenticator(Settings(), clock).issue_token(DEFAULT_IDENTITY)
    random_b = Authenticator(Settings(), clock)
    assert random_b.identify(bearer(random_a), "workers.get_all") == DEFAULT_IDENTITY
    configured = Authenticator(Settings(token_secret="s1" * 16), clock).issue_token(DEFAULT_IDENTITY)
    assert (
        jwt.decode(configured, "s1" * 16, algorithms=["HS256"], options={"verify_exp": False})["iat"]
        == 1_700_000_000
    )
    assert (
        Authenticator(Settings(token_secret="s1" * 16), clock).identify_token(configured, "x.y")
        == DEFAULT_IDENTITY
    )
