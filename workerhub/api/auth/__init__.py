"""Who is calling: credentials, ``auth.login`` tokens and their verification, shared by every transport.

The ClearML clients log in once with ``Authorization: Basic base64(key:secret)`` on ``auth.login``, get a JWT
back, and send ``Authorization: Bearer <jwt>`` on every later call; on a 401 they log in again and retry
once (wire §4).

Two modes, chosen by :attr:`Settings.auth <workerhub.config.Settings.auth>`:

* **open** (no credentials configured, the default): any Basic credentials log in, and a call without
  ``Authorization`` is served as :data:`~workerhub.messages.DEFAULT_IDENTITY`. A Bearer token that is sent
  must still be valid, so a client holding a stale token re-logs in instead of silently switching identity.
* **credentials** (``KEY:SECRET[:COMPANY[:USER]]`` entries): every call except ``auth.login`` and
  ``debug.ping`` needs a valid token, or Basic credentials (which upstream also accepts on any call).

The signing secret is :attr:`Settings.token_secret`, or else a random secret made once per process: a
restart then invalidates every token, and clients get 401/30 and log in again on their own (their retry
resends the stale header; the :data:`COOKIE` set by the new login is what lets that retry through).

Transports call :meth:`Authenticator.identify` (HTTP header) or :meth:`Authenticator.identify_token` (a
bare token, as the msgpack stream sends it) **before** decoding the request body, as upstream does.

Modules: :mod:`.credentials` (configured keys), :mod:`.tokens` (signing and checking JWTs),
:mod:`.authenticator` (the per-request check and ``auth.login``).
"""

from .authenticator import COOKIE, Authenticator, check_settings
from .credentials import Credential, parse_credentials
from .tokens import API_VERSION, FEATURE_SET, SERVER_VERSION, TOKEN_LIFETIME

__all__ = [
    "API_VERSION",
    "COOKIE",
    "FEATURE_SET",
    "SERVER_VERSION",
    "TOKEN_LIFETIME",
    "Authenticator",
    "Credential",
    "check_settings",
    "parse_credentials",
]
