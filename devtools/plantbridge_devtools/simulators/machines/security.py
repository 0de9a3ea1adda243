"""Server certificate (self-signed, generated locally), the trust list of client certificates and
username/password users for the simulator."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.cert_gen import (
    dump_private_key_as_pem,
    generate_private_key,
    generate_self_signed_app_certificate,
)
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.user_managers import UserManager
from asyncua.ua.status_codes import StatusCodes
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

if TYPE_CHECKING:
    from asyncua.server.internal_server import InternalServer

SERVER_APPLICATION_URI = "urn:plantbridge:machine-simulator:server"
CERT_FILE = "server_cert.der"
KEY_FILE = "server_key.pem"

_log = logging.getLogger(__name__)


def _certificate_is_usable(cert_path: Path, key_path: Path, app_uri: str, hosts: list[str]) -> bool:
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    try:
        cert = x509.load_der_x509_certificate(cert_path.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    names = set(san.get_values_for_type(x509.DNSName)) | {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    fresh = cert.not_valid_after_utc > datetime.now(UTC) + timedelta(days=1)
    return fresh and app_uri in san.get_values_for_type(x509.UniformResourceIdentifier) and set(hosts) <= names


def _generate(cert_path: Path, key_path: Path, app_uri: str, hosts: list[str]) -> None:
    key = generate_private_key()
    alt_names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(app_uri)]
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    cert = generate_self_signed_app_certificate(
        key,
        "plantbridge machine simulator",
        {"organizationName": "plantbridge", "countryName": "DE"},
        alt_names,
        extended=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        days=365,
    )
    key_path.write_bytes(dump_private_key_as_pem(key))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(Encoding.DER))


async def ensure_server_certificate(
    cert_dir: Path, app_uri: str = SERVER_APPLICATION_URI, endpoint_host: str | None = None
) -> tuple[Path, Path]:
    """Reuse ``cert_dir``'s certificate when it fits, else generate a new self-signed one.

    Returns (certificate DER path, private key PEM path).
    """
    await asyncio.to_thread(cert_dir.mkdir, parents=True, exist_ok=True)
    hosts = ["localhost", "127.0.0.1", socket.gethostname()]
    if endpoint_host and endpoint_host not in hosts:
        hosts.append(endpoint_host)
    cert_path, key_path = cert_dir / CERT_FILE, cert_dir / KEY_FILE
    if not await asyncio.to_thread(_certificate_is_usable, cert_path, key_path, app_uri, hosts):
        _log.info("generating self-signed server certificate in %s", cert_dir)
        await asyncio.to_thread(_generate, cert_path, key_path, app_uri, hosts)
    return cert_path, key_path


class ClientTrust:
    """The server's check of a client certificate at CreateSession: valid now, naming the client's
    application URI, and, with ``trusted_dir``, in that folder (DER or PEM) or issued by a CA there.
    The folder is read at every session, so a certificate dropped in counts without a restart."""

    _OPTIONS = (CertificateValidatorOptions.TIME_RANGE | CertificateValidatorOptions.URI
                | CertificateValidatorOptions.PEER_CLIENT)

    def __init__(self, trusted_dir: Path | None) -> None:
        self.trusted_dir = trusted_dir

    async def __call__(self, cert: x509.Certificate, app_description: ua.ApplicationDescription) -> None:
        if self.trusted_dir is None:
            await CertificateValidator(self._OPTIONS).validate(cert, app_description)
            return
        if not any(p.suffix.lower() in (".der", ".pem") for p in self.trusted_dir.glob("*")):
            _log.info("refused the client certificate of %s: the trust list %s is empty",
                      app_description.ApplicationUri, self.trusted_dir)
            raise ServiceError(StatusCodes.BadCertificateUntrusted)  # (TrustStore cannot hold nothing)
        store = TrustStore([self.trusted_dir], [])
        await store.load()
        await CertificateValidator(self._OPTIONS | CertificateValidatorOptions.TRUSTED, store).validate(
            cert, app_description)
        _log.debug("client certificate of %s trusted", app_description.ApplicationUri)


class PasswordUserManager(UserManager):
    """Username/password users; every known user gets the ``User`` role (read, browse, subscribe)."""

    def __init__(self, users: dict[str, str]) -> None:
        self._users = dict(users)

    def get_user(
        self,
        iserver: InternalServer,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username is None or password is None:
            return None
        expected = self._users.get(username)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            _log.info("rejected OPC UA login of user %r", username)
            return None
        return User(role=UserRole.User, name=username)
