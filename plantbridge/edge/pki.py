"""The edge agent's OPC UA PKI: its own application instance certificate and the servers it trusts.

A directory laid out as UA stacks keep theirs (UA-.NETStandard's directory store, open62541's
``pki/``)::

    <pki>/own/certs/plantbridge-edge.der     the agent's certificate: self-signed, DER, SubjectAltName
                                             URI = the application URI (OPC 10000-6 §6.2.2)
    <pki>/own/private/plantbridge-edge.pem   its RSA 2048 key (PEM, mode 0600)
    <pki>/trusted/certs/                     server certificates the agent trusts, or the CAs that issued them
    <pki>/trusted/crl/                       revocation lists of those CAs
    <pki>/rejected/certs/                    server certificates it refused, for an operator to inspect and
                                             move to trusted/certs

``plantbridge edge pki init --config FILE`` creates the directories and the certificate. A server
whose certificate is neither in ``trusted/certs`` nor issued by a CA there is refused before the
agent opens a secure channel or sends a password; its certificate is written to ``rejected/certs``.
The trust list is read at every connection attempt, so moving the file takes effect at the next
reconnect, without a restart.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.cert_gen import dump_private_key_as_pem, generate_private_key, generate_self_signed_app_certificate
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.ua.status_codes import StatusCodes
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from plantbridge.edge.config import ConfigError, EdgeConfig

OWN_NAME = "plantbridge-edge"
CERT_DAYS = 365 * 2
RENEW_WARNING = timedelta(days=30)

_log = logging.getLogger(__name__)

# The checks after the trust decision: validity period, the SubjectAltName URI naming the server's
# ApplicationUri, the serverAuth use. Key usage bits are not checked (CA-issued server certificates
# of real devices often lack nonRepudiation, which asyncua's KEY_USAGE check demands).
_SERVER_CHECKS = (
    CertificateValidatorOptions.TIME_RANGE | CertificateValidatorOptions.URI | CertificateValidatorOptions.PEER_SERVER
)
_REASONS = {
    StatusCodes.BadCertificateTimeInvalid: "is expired or not yet valid",
    StatusCodes.BadCertificateUriInvalid: "does not name the server's ApplicationUri in its SubjectAltName",
    StatusCodes.BadCertificateUseNotAllowed: "is not allowed for a server (extended key usage)",
    StatusCodes.BadCertificateInvalid: "lacks a SubjectAltName extension",
}


class PkiError(RuntimeError):
    """The agent's own certificate or key is missing or unusable."""


class CertificateRejected(ConnectionError):
    """The server's certificate is not trusted (or not valid); ``path`` is where it was written, if it was."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


def thumbprint(der: bytes) -> str:
    """The SHA-1 thumbprint UA uses to name a certificate (upper-case hex)."""
    return hashlib.sha1(der).hexdigest().upper()  # an identifier, as OPC UA defines it


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else "(no CN)"


@dataclass(frozen=True)
class InitResult:
    cert: Path
    key: Path
    created: bool
    thumbprint: str


class Pki:
    """One PKI directory (see the module docstring); ``cert``/``key`` may be placed elsewhere."""

    def __init__(self, root: Path, cert: Path | None = None, key: Path | None = None) -> None:
        self.root = root
        self.cert = cert or root / "own" / "certs" / f"{OWN_NAME}.der"
        self.key = key or root / "own" / "private" / f"{OWN_NAME}.pem"
        self.trusted = root / "trusted" / "certs"
        self.crl = root / "trusted" / "crl"
        self.rejected = root / "rejected" / "certs"

    # ------------------------------------------------------------------ own certificate

    def init(self, application_uri: str, hostnames: list[str] | None = None, *, force: bool = False) -> InitResult:
        """Create the directories and, unless a usable one is there (or ``force``), a new key and
        self-signed certificate for ``application_uri``."""
        for folder in (self.trusted, self.crl, self.rejected, self.cert.parent, self.key.parent):
            folder.mkdir(parents=True, exist_ok=True)
        if self.key.parent == self.root / "own" / "private":  # never a folder the operator chose for the key
            self.key.parent.chmod(0o700)
        if not force:
            try:
                cert = self.check_own(application_uri)
                return InitResult(self.cert, self.key, False, thumbprint(cert.public_bytes(Encoding.DER)))
            except PkiError:
                pass
        hosts = hostnames or [socket.gethostname()]
        key = generate_private_key()
        alt_names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
        alt_names += [x509.DNSName(h) for h in dict.fromkeys(hosts) if h]
        cert = generate_self_signed_app_certificate(
            key, f"plantbridge edge {application_uri.rsplit(':', 1)[-1]}"[:64], {"organizationName": "plantbridge"},
            alt_names, extended=[ExtendedKeyUsageOID.CLIENT_AUTH], days=CERT_DAYS,
        )
        fd = os.open(self.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(dump_private_key_as_pem(key))
        der = cert.public_bytes(Encoding.DER)
        self.cert.write_bytes(der)
        return InitResult(self.cert, self.key, True, thumbprint(der))

    def check_own(self, application_uri: str) -> x509.Certificate:
        """The agent's certificate, checked: present, the key its pair, the application URI in it, valid now."""
        hint = "create it with `plantbridge edge pki init --config <edge file>`"
        if not self.cert.is_file() or not self.key.is_file():
            missing = self.cert if not self.cert.is_file() else self.key
            raise PkiError(f"the OPC UA client certificate or key is missing ({missing}); {hint}")
        try:
            cert = x509.load_der_x509_certificate(self.cert.read_bytes())
            key = load_pem_private_key(self.key.read_bytes(), password=None)
        except (ValueError, TypeError) as err:
            raise PkiError(f"cannot read {self.cert} / {self.key} ({err}); {hint} --force") from None
        public = cert.public_key()
        if not isinstance(key, rsa.RSAPrivateKey) or key.public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        ) != public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo):
            raise PkiError(f"{self.key} is not the RSA key of {self.cert}; {hint} --force")
        try:
            uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
                x509.UniformResourceIdentifier
            )
        except x509.ExtensionNotFound:
            uris = []
        if application_uri not in uris:
            raise PkiError(
                f"{self.cert} is for {', '.join(uris) or 'no application URI'}, not the configured application URI "
                f"{application_uri} (servers refuse a certificate that does not name it); {hint} --force"
            )
        now = datetime.now(UTC)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise PkiError(f"{self.cert} is valid {cert.not_valid_before_utc:%Y-%m-%d} to "
                           f"{cert.not_valid_after_utc:%Y-%m-%d}, not now; {hint} --force")
        if cert.not_valid_after_utc - now < RENEW_WARNING:
            _log.warning("the OPC UA client certificate %s expires on %s; renew it with `plantbridge edge pki init "
                         "--force` and give the servers the new one", self.cert, f"{cert.not_valid_after_utc:%Y-%m-%d}")
        return cert

    # ------------------------------------------------------------------ servers

    async def check_server(self, der: bytes, server: ua.ApplicationDescription, endpoint: str) -> None:
        """Refuse a server certificate that is not trusted (written to ``rejected/certs``), revoked,
        expired, or not naming the server's ApplicationUri. Reads the trust list anew each time."""
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError as err:
            raise CertificateRejected(f"endpoint {endpoint}: the server sent no readable certificate ({err})") from None
        thumb = thumbprint(der)
        described = f"server certificate {common_name(cert)!r} (SHA-1 {thumb}) of {server.ApplicationUri}"
        store = TrustStore([self.trusted], [self.crl] if self.crl.is_dir() else [])
        try:
            trusted = await _is_trusted(store, cert, der, self.trusted)
            await store.load_crl()
        except (OSError, ValueError) as err:
            raise CertificateRejected(f"endpoint {endpoint}: cannot read the trust list {self.trusted}: {err}",
                                      ) from None
        if not trusted:
            path = self._write_rejected(cert, der, thumb)
            raise CertificateRejected(
                f"endpoint {endpoint}: {described} is not trusted; written to {path}. If it is this server's, "
                f"move it to {self.trusted}/ and the agent connects at its next attempt", path)
        if store.is_revoked(cert):
            raise CertificateRejected(f"endpoint {endpoint}: {described} is revoked (a CRL in {self.crl})")
        try:
            await CertificateValidator(_SERVER_CHECKS).validate(cert, server)
        except ServiceError as err:
            reason = _REASONS.get(err.code, f"fails validation (status 0x{err.code:08X})")
            raise CertificateRejected(f"endpoint {endpoint}: {described} {reason}") from None

    def _write_rejected(self, cert: x509.Certificate, der: bytes, thumb: str) -> Path:
        safe = re.sub(r"[^0-9A-Za-z._-]+", "_", common_name(cert)).strip("_")[:60] or "server"
        path = self.rejected / f"{safe}_{thumb}.der"
        try:
            self.rejected.mkdir(parents=True, exist_ok=True)
            path.write_bytes(der)
        except OSError as err:
            _log.error("cannot write the rejected certificate to %s: %s", path, err)
        return path


async def _is_trusted(store: TrustStore, cert: x509.Certificate, der: bytes, trusted: Path) -> bool:
    """The certificate itself is in the trust list (compared byte for byte: no chain building, no log
    noise), or a CA there issued it (asyncua's TrustStore builds the chain)."""
    found = False
    for path in trusted.glob("*") if trusted.is_dir() else []:
        if path.suffix.lower() not in (".der", ".pem") or not path.is_file():
            continue
        found = True
        data = path.read_bytes()
        try:
            own = data if path.suffix.lower() == ".der" else x509.load_pem_x509_certificate(data).public_bytes(
                Encoding.DER)
        except ValueError:
            continue
        if own == der:
            return True
    if not found:  # TrustStore cannot build an empty store
        return False
    await store.load_trust()
    logger = logging.getLogger("asyncuagds.validate")  # asyncua logs a traceback for every untrusted certificate
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return store.is_trusted(cert)
    finally:
        logger.setLevel(level)


def edge_pki(config: EdgeConfig) -> Pki:
    """The PKI an edge file describes (``opcua:`` block)."""
    return Pki(config.opcua.pki_dir, config.opcua.client_cert, config.opcua.client_key)


def check_edge_security(config: EdgeConfig) -> None:
    """At the agent's start: the certificate exists and fits when an endpoint is secured; a warning per
    endpoint that runs without security. Raises :class:`ConfigError` naming the fix."""
    endpoints = config.opcua_endpoints()
    for name, endpoint in endpoints.items():
        if not endpoint.secure:
            _log.warning("OPC UA endpoint %s (%s): security none (allow_insecure): machine data travels in clear "
                         "and the server is not authenticated", name, endpoint.url)
    if any(e.secure for e in endpoints.values()):
        try:
            edge_pki(config).check_own(config.application_uri)
        except PkiError as err:
            raise ConfigError(f"opcua: {err}") from None
