"""The codec server takes the Temporal UI's OIDC token (issue 15 item 1): a JWT signed by the identity
provider (keys generated here, its JWKS served over loopback by this test), checked for signature,
issuer, audience, expiry and the supervisor group; supervisor API keys keep working beside it."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from temporalio.api.common.v1 import Payload, Payloads

from plantbridge.security import oidc as oidc_module
from plantbridge.security.codec import EncryptionCodec
from plantbridge.security.codec_server import create_codec_app
from plantbridge.security.oidc import OidcConfigError, OidcSettings, OidcVerifier
from plantbridge.store import ApiKeys, Database
from tests.support import serve_app

ISSUER = "https://idp.plant.example/realms/plantbridge"
AUDIENCE = "temporal-ui"
GROUP = "plantbridge-supervisors"


class Idp:
    """The identity provider's signing keys and its JWKS endpoint (real HTTP on a loopback port)."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.published: list[dict[str, Any]] = [self._jwk(self.rsa.public_key(), "rsa-1", "RS256"),
                                                self._jwk(self.ec.public_key(), "ec-1", "ES256")]
        self.fetches = 0
        self.url = ""

    @staticmethod
    def _jwk(public: Any, kid: str, alg: str) -> dict[str, Any]:
        algo = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
        jwk: dict[str, Any] = algo.to_jwk(public, as_dict=True)  # type: ignore[attr-defined]
        return {**jwk, "kid": kid, "alg": alg, "use": "sig"}

    async def jwks(self, _: Request) -> JSONResponse:
        self.fetches += 1
        return JSONResponse({"keys": self.published})

    def token(self, *, key: Any = None, kid: str = "rsa-1", alg: str = "RS256", **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u-4711", "preferred_username": "anna.supervisor",
                "iat": now, "exp": now + 300, "groups": [GROUP, "operators"], **claims}
        body = {k: v for k, v in body.items() if v is not None}  # None: the claim left out
        return jwt.encode(body, key if key is not None else self.rsa, algorithm=alg, headers={"kid": kid})


@pytest.fixture
async def idp() -> AsyncIterator[Idp]:
    provider = Idp()
    served = await serve_app(Starlette(routes=[Route("/certs", provider.jwks)]))
    provider.url = f"{served.url}/certs"
    yield provider
    await served.stop()


def _body(codec: EncryptionCodec) -> str:
    return json_format.MessageToJson(Payloads(payloads=[Payload(metadata={"encoding": b"json/plain"},
                                                                data=b'{"order": "4711"}')]))


async def test_the_uis_oidc_token_decodes_for_supervisors_only(idp: Idp, db: Database,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    codec = EncryptionCodec({"k1": secrets.token_bytes(32)})
    sealed = json_format.MessageToJson(Payloads(payloads=await codec.encode(
        json_format.Parse(_body(codec), Payloads()).payloads)))
    settings = OidcSettings(issuer=ISSUER, audience=AUDIENCE, jwks_url=idp.url, supervisor_values=(GROUP,))
    keys = ApiKeys(db)
    _, supervisor = await keys.create(f"oidc-sup-{uuid.uuid4().hex[:6]}", "supervisor", ["*"])
    _, edge = await keys.create(f"oidc-edge-{uuid.uuid4().hex[:6]}", "edge", ["1000"])
    app = create_codec_app(codec, keys, oidc=OidcVerifier(settings))

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://codec") as http:
        async def decode(token: str) -> httpx.Response:
            return await http.post("/decode", content=sealed, headers={"Authorization": f"Bearer {token}",
                                                                       "Content-Type": "application/json"})

        r = await decode(idp.token())
        assert r.status_code == 200, r.text
        assert json_format.Parse(r.text, Payloads()).payloads[0].data == b'{"order": "4711"}'
        assert (await decode(idp.token(key=idp.ec, kid="ec-1", alg="ES256"))).status_code == 200
        assert idp.fetches == 1  # the JWKS is held, not fetched per request

        refused = {
            "wrong audience": idp.token(aud="another-app"),
            "expired": idp.token(exp=int(time.time()) - 120),
            "wrong issuer": idp.token(iss="https://evil.example"),
            "bad signature": idp.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "HMAC with the public key": jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60,
                                                    "groups": [GROUP]}, "k" * 32, algorithm="HS256",
                                                   headers={"kid": "rsa-1"}),
            "no expiry": idp.token(exp=None),
            "not a JWT": "eyJhbGciOiJub25lIn0.e30.",
        }
        for why, token in refused.items():
            r = await decode(token)
            assert r.status_code == 401, (why, r.text)
            assert r.json()["error"]["code"] == "invalid_token" and 'error="invalid_token"' in \
                r.headers["www-authenticate"], why
            assert "4711" not in r.text
        r = await decode(idp.token(groups=["operators"]))  # valid, but not a supervisor
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden_role", r.text
        assert (await decode(idp.token(groups=None))).status_code == 403

        # API keys beside OIDC: a supervisor's decodes, an edge key's does not.
        assert (await decode(supervisor)).status_code == 200
        assert (await decode(edge)).status_code == 403

        # The provider rotates: a token with a new key id fetches the JWKS again (throttled; 0 here).
        monkeypatch.setattr(oidc_module, "REFETCH_AFTER_S", 0.0)
        fresh = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        idp.published.append(Idp._jwk(fresh.public_key(), "rsa-2", "RS256"))
        assert (await decode(idp.token(key=fresh, kid="rsa-2"))).status_code == 200
        assert idp.fetches == 2


async def test_settings_from_the_environment_and_a_jwks_file(idp: Idp, tmp_path: Path) -> None:
    assert OidcSettings.from_env({}) is None  # OIDC off
    with pytest.raises(OidcConfigError, match="AUDIENCE"):
        OidcSettings.from_env({"PLANTBRIDGE_CODEC_OIDC_ISSUER": ISSUER})
    with pytest.raises(OidcConfigError, match="JWKS_URL or"):
        OidcSettings.from_env({"PLANTBRIDGE_CODEC_OIDC_ISSUER": ISSUER, "PLANTBRIDGE_CODEC_OIDC_AUDIENCE": AUDIENCE})
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": idp.published}))
    settings = OidcSettings.from_env({
        "PLANTBRIDGE_CODEC_OIDC_ISSUER": ISSUER, "PLANTBRIDGE_CODEC_OIDC_AUDIENCE": AUDIENCE,
        "PLANTBRIDGE_CODEC_OIDC_JWKS_FILE": str(jwks), "PLANTBRIDGE_CODEC_OIDC_ROLE_CLAIM": "realm_access.roles",
        "PLANTBRIDGE_CODEC_OIDC_SUPERVISOR": "pb-supervisor, admin"})
    assert settings is not None and settings.supervisor_values == ("pb-supervisor", "admin")
    verifier = OidcVerifier(settings)
    who = await verifier.verify(idp.token(realm_access={"roles": ["admin"]}))
    assert who.subject == "anna.supervisor" and "admin" in who.roles
    with pytest.raises(oidc_module.TokenForbidden):
        await verifier.verify(idp.token())  # `groups` is not the configured claim
