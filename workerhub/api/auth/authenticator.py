"""The :class:`Authenticator`: who is calling, checked per request by every transport, and ``auth.login``."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Mapping
from typing import Any

from ...clock import Clock
from ...config import Settings
from ...errors import BadAuthType, BadCredentials, InvalidCredentials, InvalidToken, NoCredentials
from ...messages import DEFAULT_IDENTITY, Identity
from .credentials import parse_credentials
from .tokens import TokenSigner, check_secret, is_number

__all__ = ["COOKIE", "Authenticator", "check_settings"]

log = logging.getLogger(__name__)

COOKIE = "workerhub_token"
"""Cookie set by ``auth.login`` (HttpOnly, SameSite=Strict), used as described in :meth:`Authenticator.identify`."""

_VERIFIED_CACHE_SIZE = 4096


def check_settings(settings: Settings) -> None:
    """Refuse auth settings that cannot work, before the server starts (raises SettingsError)."""
    parse_credentials(settings.auth)
    check_secret(settings)


class Authenticator:
    """Checks callers and issues tokens for one server (its settings and clock). Cheap to construct; a
    transport keeps one for its lifetime so verified tokens are cached (see :meth:`_verify_token`)."""

    __slots__ = ("_clock", "_credentials", "_signer", "_verified")

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._credentials = parse_credentials(settings.auth)
        self._signer = TokenSigner(settings, clock)
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
            entry = self._signer.decode(token)  # PyJWT's cost is why verified tokens are cached
            if not self.open_mode and not any(c.identity == entry[0] for c in self._credentials.values()):
                # Signed by us but for an identity no longer configured (credentials changed, same secret).
                raise InvalidToken("token identity is not configured on this server")
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

    # --- issuing -----------------------------------------------------------------------------------------

    def issue_token(self, identity: Identity, lifetime: float | None = None) -> str:
        """A signed token for ``identity`` valid ``lifetime`` seconds (default and cap: 30 days)."""
        return self._signer.issue(identity, lifetime)

    def login(self, identity: Identity, body: Any = None) -> dict[str, Any]:
        """``auth.login``'s ``data``: a token for ``identity``. ``expiration_sec`` in the body (the SDK sends it
        as a query parameter when configured) shortens the lifetime; it is capped at 30 days."""
        requested = body.get("expiration_sec") if isinstance(body, Mapping) else None
        lifetime = float(requested) if is_number(requested) and requested > 0 else None
        log.debug("auth.login: token for company %s, user %s", identity.company, identity.user)
        return {"token": self.issue_token(identity, lifetime)}
