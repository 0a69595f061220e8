"""``auth.login`` tokens: HS256 JWTs made and checked by PyJWT, with the claims the ClearML clients read.

The clients decode tokens *without* checking the signature and read ``api_version`` (the clearml 2.1 SDK
needs >= 2.23), ``feature_set``, ``server_version``, ``identity`` and ``exp``. Times (``iat``/``exp``) come
from the hub's :class:`~workerhub.clock.Clock`, so a test that advances the server clock expires tokens
without sleeping; :meth:`TokenSigner.decode` therefore checks signature and claims but not times, and the
caller compares ``exp``/``nbf`` with that clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, TypeGuard

import jwt

from ..._version import __version__
from ...clock import Clock
from ...config import Settings, SettingsError
from ...errors import InvalidToken
from ...messages import Identity

__all__ = [
    "API_VERSION",
    "FEATURE_SET",
    "SERVER_VERSION",
    "TOKEN_LIFETIME",
    "TokenSigner",
    "check_secret",
]

API_VERSION = "2.23"
"""The ``api_version`` claim. clearml 2.1.x builds service proxies that exist only from 2.23 on and crashes
below it; every version >= 2.4 resolves to the 2.4 workers endpoints here (wire §4)."""

FEATURE_SET = "basic"
"""Anything else makes the SDK call vault endpoints and the agent send cluster reports (wire §4)."""

TOKEN_LIFETIME = 30 * 86400
"""Seconds a token is valid, as upstream. The agent re-logs in before *every* call when fewer than 12 h are
left, so this must stay well above 43200 s."""

SERVER_VERSION = __version__
"""The ``server_version`` claim: the installed workerhub's version."""

_ALGORITHM = "HS256"
_DECODE_OPTIONS: Any = {
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
    "require": ["exp", "identity"],
}
_MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash
_ROLE = "user"
# One secret per process when none is configured: restarting the server logs every client out (401/30),
# and they log in again by themselves.
_PROCESS_SECRET = secrets.token_urlsafe(32)


def check_secret(settings: Settings) -> None:
    """Refuse a configured signing secret too short for HS256 (raises SettingsError)."""
    if settings.token_secret is not None and len(settings.token_secret.encode()) < _MIN_SECRET_BYTES:
        raise SettingsError(f"setting 'token_secret' must be at least {_MIN_SECRET_BYTES} bytes long")


class TokenSigner:
    """Signs and checks tokens with one secret (:attr:`Settings.token_secret`, else one random per process)."""

    __slots__ = ("_clock", "_secret")

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._secret = settings.token_secret or _PROCESS_SECRET
        self._clock = clock

    def issue(self, identity: Identity, lifetime: float | None = None) -> str:
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

    def decode(self, token: str) -> tuple[Identity, float, float]:
        """Signature and claims of a token, without its times: ``(identity, exp, nbf)``; raises
        :class:`~workerhub.errors.InvalidToken`. PyJWT costs ~100-160 µs a call, a sixth of a request's
        whole budget: callers cache what it returns."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=[_ALGORITHM], options=_DECODE_OPTIONS)
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(str(exc)) from None
        exp, nbf = claims["exp"], claims.get("nbf", 0)
        if not is_number(exp) or not is_number(nbf):
            raise InvalidToken("exp and nbf must be numbers")
        return _identity_from_claim(claims["identity"]), exp, nbf


def is_number(value: Any) -> TypeGuard[int | float]:
    """An int or float that is not a bool (JSON numbers as claims and body fields carry them)."""
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
