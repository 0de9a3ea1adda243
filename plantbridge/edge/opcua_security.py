"""Securing one OPC UA connection: pick the endpoint the configuration asks for (never a weaker one),
check the server's certificate against the trust list, then let asyncua open the secure channel to
exactly that certificate.

Order matters: the endpoints are read over an unsecured discovery channel (GetEndpoints, which
every server answers and which carries nothing secret); the certificate is judged before any secure
channel, session or password exists. asyncua then encrypts to the certificate given here and
refuses a CreateSession answered with another one ("Server certificate mismatch").
"""

from __future__ import annotations

from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaStatusCodeError

from plantbridge.edge.config import EndpointConfig
from plantbridge.edge.pki import CertificateRejected, Pki, thumbprint

_MODES = {"sign": ua.MessageSecurityMode.Sign, "sign_and_encrypt": ua.MessageSecurityMode.SignAndEncrypt}
_MODE_NAMES = {ua.MessageSecurityMode.None_: "None", ua.MessageSecurityMode.Sign: "Sign",
               ua.MessageSecurityMode.SignAndEncrypt: "SignAndEncrypt"}


class SecurityRefused(ConnectionError):
    """The server does not offer the configured policy and mode; the agent does not fall back."""


def _offered(endpoints: list[ua.EndpointDescription]) -> str:
    pairs = {f"{(e.SecurityPolicyUri or '').rsplit('#', 1)[-1]} {_MODE_NAMES.get(e.SecurityMode, e.SecurityMode)}"
             for e in endpoints}
    return ", ".join(sorted(pairs)) or "nothing"


def first_certificate(der: bytes) -> bytes:
    """The leading certificate of a DER blob that may carry the chain after it (length of the outer
    SEQUENCE, long form with two length bytes, as every RSA certificate has)."""
    if len(der) < 4 or der[0] != 0x30 or der[1] != 0x82:
        return der
    return der[: int.from_bytes(der[2:4], "big") + 4]


_REFUSALS = {StatusCodes.BadCertificateUntrusted: "BadCertificateUntrusted",
             StatusCodes.BadSecurityChecksFailed: "BadSecurityChecksFailed"}


def refused_by_server(
    err: UaStatusCodeError, name: str, endpoint: EndpointConfig, pki: Pki
) -> CertificateRejected | None:
    """The server's refusal of the agent's own certificate, said so that an operator knows what to do
    (None for any other error)."""
    status = _REFUSALS.get(err.code)
    if not endpoint.secure or status is None:
        return None
    try:
        thumb = f" (SHA-1 {thumbprint(pki.cert.read_bytes())})"
    except OSError:
        thumb = ""
    return CertificateRejected(
        f"endpoint {name}: the server refused this agent's certificate {pki.cert}{thumb} ({status}); add it to "
        "the server's trust list (many servers keep it in their rejected list by now)"
    )


async def secure(client: Client, name: str, endpoint: EndpointConfig, pki: Pki) -> None:
    """Configure ``client`` for ``endpoint``'s security; raises :class:`SecurityRefused` or
    :class:`~plantbridge.edge.pki.CertificateRejected` (a connection error: the session retries)."""
    if not endpoint.secure:
        return
    mode = _MODES[endpoint.mode]
    offered = await client.connect_and_get_server_endpoints()
    matching = [e for e in offered if e.SecurityPolicyUri == SecurityPolicyBasic256Sha256.URI
                and e.SecurityMode == mode and e.ServerCertificate]
    if not matching:
        raise SecurityRefused(
            f"endpoint {name}: the server offers no Basic256Sha256 {_MODE_NAMES[mode]} endpoint (it offers "
            f"{_offered(offered)}); the agent does not fall back to weaker security"
        )
    chosen = matching[0]
    server_cert = first_certificate(chosen.ServerCertificate)
    await pki.check_server(server_cert, chosen.Server, name)
    await client.set_security(
        SecurityPolicyBasic256Sha256,
        certificate=str(pki.cert),
        private_key=str(pki.key),
        server_certificate=server_cert,
        mode=mode,
    )
