"""Encryption at rest for everything plantbridge puts into Temporal: AES-256-GCM payload codec.

Every payload (workflow inputs, activity arguments and results, signals, updates, queries, memo,
current details) leaves the client encrypted; Temporal's history holds only
`encoding: binary/encrypted` payloads with the id of the key that sealed them. Search attributes are
not payloads and stay readable (Plant, OrderNumber, OrderState, ...). With a codec, failure messages
and stack traces move into an encoded attribute as well (they often quote order data).

Keys and rotation: a keyring of named 256-bit keys. The first key encrypts; every key decrypts, so
a new key is put first and the old ones stay until no open history needs them. Payloads that were
never encrypted (histories from before the codec) pass through unchanged.

Configuration (the same in every process that talks to Temporal: worker, gateway, CLI, bench):
- `PLANTBRIDGE_CODEC_KEYS="k2:<base64 32 bytes>,k1:<base64 32 bytes>"`, or
- `PLANTBRIDGE_CODEC_KEYS_FILE=/run/secrets/codec-keys` (the same format; commas or new lines).
Neither set: no codec, payloads as JSON (development default).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from plantbridge.converter import pydantic_data_converter

ENCODING = b"binary/encrypted"
KEY_ID_META = "encryption-key-id"
KEYS_ENV = "PLANTBRIDGE_CODEC_KEYS"
KEYS_FILE_ENV = "PLANTBRIDGE_CODEC_KEYS_FILE"
NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class CodecKeyError(ValueError):
    """The key configuration cannot be used (the message names the key id, never key material)."""


class CodecError(ValueError):
    """A payload cannot be decrypted: unknown key id or tampered data."""


def parse_keys(text: str) -> dict[str, bytes]:
    """`id:base64,id:base64` (commas or new lines; `#` comments) into an ordered keyring, first encrypts."""
    keys: dict[str, bytes] = {}
    for n, raw in enumerate(re.split(r"[,\n]", text), start=1):
        item = raw.split("#", 1)[0].strip()
        if not item:
            continue
        key_id, sep, material = item.partition(":")
        key_id = key_id.strip()
        if not sep or not _KEY_ID.match(key_id):
            raise CodecKeyError(f"codec key {n}: write it as '<key id>:<base64 of 32 bytes>' "
                                "(key id: letters, digits, '.', '_' or '-')")
        try:
            key = base64.b64decode(material.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise CodecKeyError(f"codec key {key_id!r}: the key is not valid base64") from None
        if len(key) != 32:
            raise CodecKeyError(f"codec key {key_id!r}: an AES-256 key has 32 bytes, this one {len(key)}")
        if key_id in keys:
            raise CodecKeyError(f"codec key {key_id!r} appears twice")
        keys[key_id] = key
    if not keys:
        raise CodecKeyError("no codec key given")
    return keys


def new_key(key_id: str) -> str:
    """A fresh key in the configuration format, `id:base64`."""
    if not _KEY_ID.match(key_id):
        raise CodecKeyError(f"key id {key_id!r}: letters, digits, '.', '_' or '-' (up to 64)")
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over the whole serialized payload (its metadata included); the key id is both in
    the encrypted payload's metadata and bound into the ciphertext as associated data."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        if not keys:
            raise CodecKeyError("an encryption codec needs at least one key")
        self._keys = {kid: AESGCM(key) for kid, key in keys.items()}
        self.key_ids: tuple[str, ...] = tuple(keys)
        self.current = self.key_ids[0]

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        kid = self.current
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._keys[kid].encrypt(nonce, payload.SerializeToString(), kid.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID_META: kid.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # never encrypted (written before the codec was configured)
        kid = payload.metadata.get(KEY_ID_META, b"").decode(errors="replace")
        aead = self._keys.get(kid)
        if aead is None:
            raise CodecError(f"payload sealed with codec key {kid[:64]!r}, which this keyring does not hold "
                             f"(it holds {', '.join(self.key_ids)})")
        try:
            plain = aead.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], kid.encode())
        except InvalidTag:
            raise CodecError(f"payload sealed with codec key {kid!r} does not decrypt "
                             "(altered, or sealed with another key of that id)") from None
        out = Payload()
        out.ParseFromString(plain)
        return out


def keys_from_env(environ: Mapping[str, str] | None = None) -> dict[str, bytes] | None:
    """The keyring from `PLANTBRIDGE_CODEC_KEYS` or the file `PLANTBRIDGE_CODEC_KEYS_FILE`; None when neither is set."""
    env = os.environ if environ is None else environ
    inline = env.get(KEYS_ENV, "").strip()
    path = env.get(KEYS_FILE_ENV, "").strip()
    if inline and path:
        raise CodecKeyError(f"set {KEYS_ENV} or {KEYS_FILE_ENV}, not both")
    if path:
        try:
            return parse_keys(Path(path).read_text())
        except OSError as err:
            raise CodecKeyError(f"{KEYS_FILE_ENV}: cannot read {path}: {err.strerror}") from None
    return parse_keys(inline) if inline else None


def codec_from_env(environ: Mapping[str, str] | None = None) -> EncryptionCodec | None:
    keys = keys_from_env(environ)
    return EncryptionCodec(keys) if keys else None


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """The pydantic converter (plantbridge.converter), with the codec and encoded failure messages if any."""
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec,
                               failure_converter_class=DefaultFailureConverterWithEncodedAttributes)
