"""Transports' shared layer: request parsing, the endpoint table, the envelope, codecs, and the HTTP app."""

from .endpoints import ENDPOINTS, CallContext, dispatch, resolve
from .http import create_app

__all__ = ["ENDPOINTS", "CallContext", "create_app", "dispatch", "resolve"]
