"""Configured credentials: ``KEY:SECRET[:COMPANY[:USER]]`` entries parsed into keys and identities."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from ...config import SettingsError
from ...messages import DEFAULT_IDENTITY, Identity

__all__ = ["Credential", "parse_credentials"]


@dataclass(frozen=True, slots=True)
class Credential:
    """One configured key: its secret and the identity it logs in as."""

    key: str
    secret: str = field(repr=False)
    identity: Identity = DEFAULT_IDENTITY


@lru_cache(maxsize=8)
def parse_credentials(entries: tuple[str, ...]) -> Mapping[str, Credential]:
    """``{access key: Credential}`` from ``KEY:SECRET[:COMPANY[:USER]]`` entries.

    COMPANY defaults to the open-mode company (so keys without one share it) and USER to the key. A secret
    cannot contain ``:``. Raises :class:`~workerhub.config.SettingsError` naming the bad entry.

    >>> creds = parse_credentials(("agent:s3cret:acme",))
    >>> creds["agent"].identity.company, creds["agent"].identity.user
    ('acme', 'agent')
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
    # error messages name the entry but never echo its secret
    key, _, rest = entry.partition(":")
    return f"{key}:***" if rest else key
