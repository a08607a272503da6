"""Readers of the single sign-on settings: a mistake in either stops start-up and says where.

`OIDC_PROVIDERS` is a JSON list of `{"name", "issuer", "client_id", "client_secret"}`;
`OIDC_REDIRECT_URIS` is the comma-separated allow-list of where a finished sign-in may send the
browser. Messages name the provider by its position and the field, never a secret's value.
"""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

PROVIDER_FIELDS = ("name", "issuer", "client_id", "client_secret")
PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")  # it is a path segment of the API
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _secure_url(value: str) -> bool:
    """https anywhere; plain http only on this machine (a provider or app under development)."""
    parts = urlsplit(value)
    return bool(parts.hostname) and (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK))


def to_oidc_providers(value: str) -> list[dict]:
    try:
        items = json.loads(value) if value.strip() else []
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(items, list):
        raise ValueError('must be a JSON list of {"name", "issuer", "client_id", "client_secret"} objects')
    providers, names = [], set()
    for position, item in enumerate(items, start=1):
        where = f"provider {position}"
        if not isinstance(item, dict):
            raise ValueError(f"{where} must be an object")
        unknown = sorted(set(item) - set(PROVIDER_FIELDS))
        if unknown:
            raise ValueError(f"{where} has unknown fields: {', '.join(unknown)}")
        blank = [key for key in PROVIDER_FIELDS if not isinstance(item.get(key), str) or not item[key].strip()]
        if blank:
            raise ValueError(f"{where} needs {', '.join(blank)} (non-empty strings)")
        provider = {key: item[key].strip() for key in PROVIDER_FIELDS}
        if not PROVIDER_NAME.match(provider["name"]):
            raise ValueError(f"{where}: name must be 1-32 of a-z, 0-9, '-' and '_' (it is part of a URL)")
        if provider["name"] in names:
            raise ValueError(f"{where}: the name {provider['name']!r} is used twice")
        if not _secure_url(provider["issuer"]) or urlsplit(provider["issuer"]).query:
            raise ValueError(f"{where} ({provider['name']}): issuer must be an https URL without a query "
                             "(http only on 127.0.0.1/localhost)")
        names.add(provider["name"])
        providers.append(provider)
    return providers


def to_redirect_uris(value: str) -> list[str]:
    """Absolute URIs without a fragment: https (http on loopback), or an app's own scheme (RFC 8252: `com.example.app:/done`)."""
    uris = [item.strip() for item in value.split(",") if item.strip()]
    for uri in uris:
        parts = urlsplit(uri)
        private_scheme = "." in parts.scheme and parts.scheme not in {"http", "https"}
        if parts.fragment or not (private_scheme or _secure_url(uri)):
            raise ValueError(f"{uri!r} must be an https URL (http only on 127.0.0.1/localhost) or use an app's "
                             "own scheme such as com.example.app:/signed-in, without a #fragment")
    return uris
