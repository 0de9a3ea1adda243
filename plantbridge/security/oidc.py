"""OIDC bearer tokens at the codec server: the Temporal UI passes its user's access token
(`TEMPORAL_CODEC_PASS_ACCESS_TOKEN=true`); a valid one whose role claim names a supervisor group decodes.

Checked (PyJWT): the signature against the identity provider's JWKS (RS256 or ES256 only: no `none`,
no HMAC), the issuer, the audience, the expiry (`exp` required; 30 s leeway) and the role claim. The
JWKS comes from a URL (fetched once, again when a token names an unknown key id, at most every 30 s,
and every 10 minutes) or a file. Configuration from the environment:

| variable | what |
| --- | --- |
| `PLANTBRIDGE_CODEC_OIDC_ISSUER` | the `iss` tokens must carry (switches OIDC on) |
| `PLANTBRIDGE_CODEC_OIDC_AUDIENCE` | the `aud` tokens must carry (the UI's client id, or an API audience) |
| `PLANTBRIDGE_CODEC_OIDC_JWKS_URL` / `_JWKS_FILE` | the provider's signing keys |
| `PLANTBRIDGE_CODEC_OIDC_ROLE_CLAIM` | the claim of roles or groups (nested: `realm_access.roles`); `groups` |
| `PLANTBRIDGE_CODEC_OIDC_SUPERVISOR` | its values that count as supervisor, comma-separated; `supervisor` |
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt

log = logging.getLogger("plantbridge.codec")

ENV = "PLANTBRIDGE_CODEC_OIDC_"
ALGORITHMS = ("RS256", "ES256")
REFETCH_AFTER_S = 30.0  # an unknown key id fetches the JWKS again, at most this often
MAX_AGE_S = 600.0


class OidcConfigError(ValueError):
    """The OIDC settings are incomplete."""


class TokenInvalid(Exception):
    """401: not a token this server accepts (signature, issuer, audience, expiry, form)."""


class TokenForbidden(Exception):
    """403: a valid token whose holder is not a supervisor."""


class KeysUnavailable(Exception):
    """503: the identity provider's keys could not be read."""


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    audience: str
    jwks_url: str | None = None
    jwks_file: Path | None = None
    role_claim: str = "groups"
    supervisor_values: tuple[str, ...] = ("supervisor",)
    leeway_s: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OidcSettings | None:
        """The settings, or None when `PLANTBRIDGE_CODEC_OIDC_ISSUER` is not set (OIDC off)."""
        env = os.environ if env is None else env
        issuer = env.get(f"{ENV}ISSUER", "").strip()
        if not issuer:
            return None
        audience = env.get(f"{ENV}AUDIENCE", "").strip()
        url, file = env.get(f"{ENV}JWKS_URL", "").strip(), env.get(f"{ENV}JWKS_FILE", "").strip()
        if not audience:
            raise OidcConfigError(f"{ENV}AUDIENCE is required with {ENV}ISSUER")
        if bool(url) == bool(file):
            raise OidcConfigError(f"set one of {ENV}JWKS_URL or {ENV}JWKS_FILE")
        values = tuple(v.strip() for v in env.get(f"{ENV}SUPERVISOR", "supervisor").split(",") if v.strip())
        if not values:
            raise OidcConfigError(f"{ENV}SUPERVISOR names no value")
        return cls(issuer=issuer, audience=audience, jwks_url=url or None, jwks_file=Path(file) if file else None,
                   role_claim=env.get(f"{ENV}ROLE_CLAIM", "").strip() or "groups", supervisor_values=values)


@dataclass(frozen=True)
class Identity:
    subject: str
    roles: tuple[str, ...]


class OidcVerifier:
    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")

    async def verify(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as err:
            raise TokenInvalid(f"not a JWT: {err}") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise TokenInvalid(f"algorithm {str(alg)[:10]!r} not accepted (only {', '.join(ALGORITHMS)})")
        key = await self._key(header.get("kid"))
        s = self.settings
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key=key, algorithms=[alg], audience=s.audience, issuer=s.issuer, leeway=s.leeway_s,
                options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise TokenInvalid("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise TokenInvalid("the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise TokenInvalid("the token is from another issuer") from None
        except jwt.PyJWTError as err:
            raise TokenInvalid(f"the token is not valid: {str(err)[:100]}") from None
        roles = _roles(claims, s.role_claim)
        subject = str(claims.get("preferred_username") or claims.get("email") or claims.get("sub") or "?")[:100]
        if not set(roles) & set(s.supervisor_values):
            raise TokenForbidden(f"decoding payloads needs {s.role_claim} to name a supervisor group "
                                 f"({', '.join(s.supervisor_values)})")
        return Identity(subject, roles)

    async def _key(self, kid: str | None) -> Any:
        now = time.monotonic()
        stale = now - self._fetched_at > MAX_AGE_S
        unknown = (kid not in self._keys if kid else len(self._keys) != 1) and now - self._fetched_at > REFETCH_AFTER_S
        if stale or unknown:
            try:
                self._keys = await self._load()
                self._fetched_at = now
            except KeysUnavailable:
                if not self._keys:
                    raise
                log.warning("the identity provider's keys could not be refreshed; using the ones held")
        if kid is None:
            if len(self._keys) != 1:
                raise TokenInvalid("the token names no key id (kid) and the JWKS holds several keys")
            return next(iter(self._keys.values())).key
        found = self._keys.get(kid)
        if found is None:
            raise TokenInvalid("the token is signed with a key the identity provider does not publish")
        return found.key

    async def _load(self) -> dict[str, jwt.PyJWK]:
        s = self.settings
        try:
            if s.jwks_file is not None:
                data = json.loads(s.jwks_file.read_text())
            else:
                assert s.jwks_url is not None
                async with httpx.AsyncClient(timeout=5) as http:
                    answer = await http.get(s.jwks_url)
                    answer.raise_for_status()
                    data = answer.json()
            keys = jwt.PyJWKSet.from_dict(data).keys
        except (OSError, ValueError, httpx.HTTPError, jwt.PyJWTError) as err:
            raise KeysUnavailable(f"the identity provider's keys could not be read: {str(err)[:200]}") from None
        return {k.key_id or f"#{i}": k for i, k in enumerate(keys) if k.public_key_use in (None, "sig")}


def _roles(claims: Mapping[str, Any], path: str) -> tuple[str, ...]:
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return tuple(value.replace(",", " ").split())
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()
