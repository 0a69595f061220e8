"""Who is calling: ``auth.login`` tokens and their verification, shared by every transport.

The ClearML clients log in once with ``Authorization: Basic base64(key:secret)`` on ``auth.login``, get a JWT
back, and send ``Authorization: Bearer <jwt>`` on every later call; on a 401 they log in again and retry
once (wire §4). Tokens are HS256 JWTs made and checked by PyJWT. The clients decode them *without* checking
the signature and read ``api_version`` (the clearml 2.1 SDK needs >= 2.23), ``feature_set``,
``server_version``, ``identity`` and ``exp``.

Two modes, chosen by :attr:`Settings.auth <workerhub.config.Settings.auth>`:

* **open** (no credentials configured, the default): any Basic credentials log in, and a call without
  ``Authorization`` is served as :data:`~workerhub.messages.DEFAULT_IDENTITY`. A Bearer token that is sent
  must still be valid, so a client holding a stale token re-logs in instead of silently switching identity.
* **credentials** (``KEY:SECRET[:COMPANY[:USER]]`` entries): every call except ``auth.login`` and
  ``debug.ping`` needs a valid token, or Basic credentials (which upstream also accepts on any call).

The signing secret is :attr:`Settings.token_secret`, or else a random secret made once per process: a
restart then invalidates every token, and clients get 401/30 and log in again on their own (their retry
resends the stale header; the :data:`COOKIE` set by the new login is what lets that retry through).

The time used for ``iat``/``exp`` and for expiry checks is the hub's :class:`~workerhub.clock.Clock`, so a
test that advances the server clock expires tokens without sleeping. Transports call
:meth:`Authenticator.identify` (HTTP header) or :meth:`Authenticator.identify_token` (a bare token, as the
msgpack stream sends it) **before** decoding the request body, as upstream does.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import importlib.metadata
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jwt

from ..clock import Clock
from ..config import Settings, SettingsError
from ..errors import BadAuthType, BadCredentials, InvalidCredentials, InvalidToken, NoCredentials
from ..messages import DEFAULT_IDENTITY, Identity

__all__ = [
    "API_VERSION",
    "COOKIE",
    "FEATURE_SET",
    "TOKEN_LIFETIME",
    "Authenticator",
    "Credential",
    "check_settings",
    "parse_credentials",
]

log = logging.getLogger(__name__)

API_VERSION = "2.23"
"""The ``api_version`` claim. clearml 2.1.x builds service proxies that exist only from 2.23 on and crashes
below it; every version >= 2.4 resolves to the 2.4 workers endpoints here (wire §4)."""

FEATURE_SET = "basic"
"""Anything else makes the SDK call vault endpoints and the agent send cluster reports (wire §4)."""

TOKEN_LIFETIME = 30 * 86400
"""Seconds a token is valid, as upstream. The agent re-logs in before *every* call when fewer than 12 h are
left, so this must stay well above 43200 s."""

COOKIE = "workerhub_token"
"""Cookie set by ``auth.login`` (HttpOnly, SameSite=Strict), used as described in :meth:`Authenticator.identify`."""

_ALGORITHM = "HS256"
_DECODE_OPTIONS: Any = {
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
    "require": ["exp", "identity"],
}
_VERIFIED_CACHE_SIZE = 4096
_MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash
_ROLE = "user"
# One secret per process when none is configured: restarting the server logs every client out (401/30),
# and they log in again by themselves.
_PROCESS_SECRET = secrets.token_urlsafe(32)

try:
    SERVER_VERSION = importlib.metadata.version("workerhub")
except importlib.metadata.PackageNotFoundError:  # running from a source tree that is not installed
    SERVER_VERSION = "0.0.0"


@dataclass(frozen=True, slots=True)
class Credential:
    """One configured key: its secret and the identity it logs in as."""

    key: str
    secret: str = field(repr=False)
    identity: Identity = DEFAULT_IDENTITY


def check_settings(settings: Settings) -> None:
    """Refuse auth settings that cannot work, before the server starts (raises SettingsError)."""
    parse_credentials(settings.auth)
    if settings.token_secret is not None and len(settings.token_secret.encode()) < _MIN_SECRET_BYTES:
        raise SettingsError(f"setting 'token_secret' must be at least {_MIN_SECRET_BYTES} bytes long")


@lru_cache(maxsize=8)
def parse_credentials(entries: tuple[str, ...]) -> Mapping[str, Credential]:
    """``{access key: Credential}`` from ``KEY:SECRET[:COMPANY[:USER]]`` entries.

    COMPANY defaults to the open-mode company (so keys without one share it) and USER to the key. A secret
    cannot contain ``:``. Raises :class:`~workerhub.config.SettingsError` naming the bad entry.
    """
    out: dict[str, Credential] = {}
    for entry in entries:
        parts = entry.split(":")
        if not 2 <= len(parts) <= 4 or not all(p.strip() for p in parts):
            raise SettingsError(
                f"setting 'auth': entry {_redact(entry)!r} is not KEY:SECRET[:COMPANY[:USER]] with non-empty parts"
            )
        key, secret, *rest = (p.strip() for p in parts)
        company = rest[0] if rest else DEFAULT_IDENTITY.company
        user = rest[1] if len(rest) > 1 else key
        if key in out:
            raise SettingsError(f"setting 'auth': access key {key!r} is given twice")
        out[key] = Credential(key, secret, Identity(company, user, company_name=company, user_name=user))
    return out


def _redact(entry: str) -> str:
    key, _, rest = entry.partition(":")
    return f"{key}:***" if rest else key


class Authenticator:
    """Checks callers and issues tokens for one server (its settings and clock). Cheap to construct; a
    transport keeps one for its lifetime so verified tokens are cached (see :meth:`_decode`)."""

    __slots__ = ("_clock", "_credentials", "_secret", "_verified")

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._credentials = parse_credentials(settings.auth)
        self._secret = settings.token_secret or _PROCESS_SECRET
        self._clock = clock
        # token -> (identity, exp, nbf) for tokens whose signature and claims checked out; their times are
        # still checked on every call. Only tokens we signed get in, so garbage tokens cannot flush it.
        self._verified: dict[str, tuple[Identity, float, float]] = {}

    @property
    def open_mode(self) -> bool:
        """True when no credentials are configured: callers without a token are the default identity."""
        return not self._credentials

    # --- verification ------------------------------------------------------------------------------------

    def identify(
        self, authorization: str | bytes | None, call_name: str, *, cookie_token: str | None = None
    ) -> Identity:
        """The caller's identity from an ``Authorization`` header value, or the 401 error (wire §3).

        ``auth.login`` accepts Basic credentials (or a valid Bearer token, which it renews). Other calls
        accept a Bearer token, Basic credentials, or, in open mode, nothing. ``debug.ping`` is never checked.

        ``cookie_token`` is the token of the :data:`COOKIE` that ``auth.login`` sets. It is used only when a
        Bearer token is sent and is invalid: the SDK and agent retry a 401'd call after logging in again but
        with the *old* Authorization header, and their HTTP session carries the new cookie. A request with
        no Authorization header never authenticates by cookie (no ambient, CSRF-able credentials).
        """
        if call_name == "debug.ping":
            return DEFAULT_IDENTITY
        if isinstance(authorization, bytes):
            authorization = authorization.decode("latin-1")
        if not authorization or not authorization.strip():
            if self.open_mode:
                return DEFAULT_IDENTITY
            raise NoCredentials()
        scheme, _, data = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            try:
                return self._verify_token(data.strip())
            except InvalidToken:
                if not cookie_token or cookie_token == data.strip():
                    raise
                try:
                    return self._verify_token(cookie_token)
                except InvalidToken:
                    pass
                raise
        if scheme == "basic":
            return self._verify_basic(data.strip())
        raise BadAuthType(f"scheme {scheme!r}; use Basic or Bearer")

    def identify_token(self, token: str | bytes | None, call_name: str) -> Identity:
        """Like :meth:`identify` for a transport that carries a bare token (no scheme) per request."""
        if isinstance(token, bytes):
            token = token.decode("latin-1")
        return self.identify(f"Bearer {token}" if token else None, call_name)

    def _verify_basic(self, data: str) -> Identity:
        try:
            decoded = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise BadCredentials("Basic data is not base64 of key:secret") from None
        key, sep, secret = decoded.partition(":")
        if not sep or not key:
            raise BadCredentials("Basic data is not key:secret")
        if self.open_mode:
            return DEFAULT_IDENTITY
        cred = self._credentials.get(key)
        # Compare secrets in constant time; an unknown key gets the same error as a wrong secret.
        if cred is None or not hmac.compare_digest(cred.secret.encode(), secret.encode()):
            raise InvalidCredentials()
        return cred.identity

    def _verify_token(self, token: str) -> Identity:
        if not token:
            raise InvalidToken("empty Bearer token")
        entry = self._verified.get(token)
        if entry is None:
            entry = self._decode(token)
            if len(self._verified) >= _VERIFIED_CACHE_SIZE:
                del self._verified[next(iter(self._verified))]  # oldest first: clients reuse tokens for days
            self._verified[token] = entry
        identity, exp, nbf = entry
        # Times against the hub's clock (which tests move forward), not time.time() as PyJWT would.
        now = self._clock.wall()
        if exp <= now:
            raise InvalidToken("token expired")
        if nbf > now:
            raise InvalidToken("token not yet valid")
        return identity

    def _decode(self, token: str) -> tuple[Identity, float, float]:
        """Signature and claims of a token, without its times: ``(identity, exp, nbf)``. PyJWT costs
        ~100-160 µs a call, a sixth of a request's whole budget, hence the cache of verified tokens."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=[_ALGORITHM], options=_DECODE_OPTIONS)
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(str(exc)) from None
        exp, nbf = claims["exp"], claims.get("nbf", 0)
        if not _is_number(exp) or not _is_number(nbf):
            raise InvalidToken("exp and nbf must be numbers")
        identity = _identity_from_claim(claims["identity"])
        if not self.open_mode and not any(c.identity == identity for c in self._credentials.values()):
            # Signed by us but for an identity no longer configured (credentials changed, same secret).
            raise InvalidToken("token identity is not configured on this server")
        return identity, exp, nbf

    # --- issuing -----------------------------------------------------------------------------------------

    def issue_token(self, identity: Identity, lifetime: float | None = None) -> str:
        """A signed token for ``identity`` valid ``lifetime`` seconds (default and cap: 30 days)."""
        now = int(self._clock.wall())
        seconds = TOKEN_LIFETIME if lifetime is None else max(1, min(int(lifetime), TOKEN_LIFETIME))
        claims = {
            "env": "workerhub",
            "api_version": API_VERSION,
            "feature_set": FEATURE_SET,
            "server_version": SERVER_VERSION,
            "identity": {
                "company": identity.company,
                "company_name": identity.company_name or identity.company,
                "user": identity.user,
                "user_name": identity.user_name or identity.user,
                "role": _ROLE,
            },
            "iat": now,
            "exp": now + seconds,
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def login(self, identity: Identity, body: Any = None) -> dict[str, Any]:
        """``auth.login``'s ``data``: a token for ``identity``. ``expiration_sec`` in the body (the SDK sends it
        as a query parameter when configured) shortens the lifetime; it is capped at 30 days."""
        lifetime = body.get("expiration_sec") if isinstance(body, Mapping) else None
        if not _is_number(lifetime) or not lifetime > 0:
            lifetime = None
        log.debug("auth.login: token for company %s, user %s", identity.company, identity.user)
        return {"token": self.issue_token(identity, lifetime)}


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _identity_from_claim(claim: Any) -> Identity:
    if not isinstance(claim, Mapping):
        raise InvalidToken("identity claim must be an object")
    company, user = claim.get("company"), claim.get("user")
    if not isinstance(company, str) or not isinstance(user, str) or not company or not user:
        raise InvalidToken("identity claim must name a company and a user")
    company_name, user_name = claim.get("company_name"), claim.get("user_name")
    return Identity(
        company,
        user,
        company_name=company_name if isinstance(company_name, str) else company,
        user_name=user_name if isinstance(user_name, str) else user,
    )
