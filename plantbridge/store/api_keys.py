"""API keys of the gateway: stored hashed (sha256 of a high-entropy key), looked up by a key id.

A key reads `pbk_<key id>_<secret>`; only its id, name, role, plants and hash are stored, so the
key itself is shown once, when it is created.

A plant-system or edge key is bound to one source kind (`mes`, `qms`, `wms`, `edge`: which event
types it may send, see canonical/ownership.py) and to the `source` values it may speak for
(prefixes; by default its kind, e.g. `qms` admits `qms-1710`). Keys created before kinds existed
have none: a plant-system key then counts as `mes` and an edge key as `edge`, and their `source`
is not checked (migration; re-issue them with `--kind`).

Lifetime: a key may carry `expires_at` (refused after it, as a revoked one); `last_used_at` shows
which keys are still in use (written at most once a minute per key and process). `rotate` gives a
key a new secret under the same id; the old secret keeps working for a grace period so the system
holding it can switch without downtime. Creations, rotations and revocations are audited with the
identity of who did them (`actor`), in the audit trail under `api-key:<key id>`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import JSON, DateTime, Row, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from plantbridge.store.audit import AuditTrail
from plantbridge.store.db import Database
from plantbridge.store.models import Base, utcnow

Role = Literal["erp", "plant-system", "edge", "supervisor"]
ROLES: tuple[str, ...] = ("erp", "plant-system", "edge", "supervisor")
KINDS: tuple[str, ...] = ("mes", "qms", "wms", "edge")
# The kind a key of a role has when none was given (and which kinds a role may be given).
ROLE_KINDS: dict[str, tuple[str, ...]] = {"plant-system": ("mes", "qms", "wms"), "edge": ("edge",)}
KEY_PREFIX = "pbk_"


class ApiKeyRecord(Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    plants: Mapped[list[str]] = mapped_column(JSON, default=list)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    kind: Mapped[str | None] = mapped_column(String(8), nullable=True)
    sources: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # After a rotation: the previous secret's hash and until when it is still accepted.
    previous_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    previous_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# Columns added after the table first shipped: (name, DDL type), added to an existing table at start.


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    name: str
    role: str
    plants: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    kind: str | None = None  # as stored; None for keys from before kinds (see `source_kind`)
    sources: tuple[str, ...] | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    previous_until: datetime | None = None

    def may(self, plant: str) -> bool:
        return "*" in self.plants or plant in self.plants

    @property
    def source_kind(self) -> str | None:
        """The kind the key speaks as: its own, else its role's default (plant-system -> mes)."""
        if self.kind:
            return self.kind
        kinds = ROLE_KINDS.get(self.role)
        return kinds[0] if kinds else None

    def may_speak_for(self, source: str) -> bool:
        """Whether the key may send events with this `source` (prefix match; legacy keys: any)."""
        allowed = self.sources if self.sources is not None else ((self.kind,) if self.kind else None)
        if allowed is None:
            return True
        return any(source == p or source.startswith(p) for p in allowed)

    @property
    def all_plants(self) -> bool:
        return "*" in self.plants


class ApiKeyError(ValueError):
    """A key cannot be created as asked (unknown role, name taken, no plants)."""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _info(rec: ApiKeyRecord | Row[Any]) -> KeyInfo:
    return KeyInfo(rec.key_id, rec.name, rec.role, tuple(rec.plants or []), rec.created_at, rec.revoked_at,
                   rec.kind, tuple(rec.sources) if rec.sources is not None else None,
                   _aware(rec.expires_at), _aware(rec.last_used_at), _aware(rec.previous_until))


def _aware(at: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive; they were written in UTC."""
    if at is not None and at.tzinfo is None:
        return at.replace(tzinfo=utcnow().tzinfo)
    return at


def _new_key(key_id: str) -> str:
    return f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


CACHE_SECONDS = 10.0
# Key ids that are not in the store, remembered (at most this many, least recently used out) so a
# key tried again and again costs no read; see also the gateway's look-up rate limit.
NEGATIVE_CACHE_SIZE = 10_000
NEGATIVE_CACHE_SECONDS = 60.0
_KEY_ID = re.compile(r"^[0-9a-f]{12}$")


def key_id_of(key: str) -> str | None:
    """The key id of a well-formed key (`pbk_<12 hex>_<secret>`), else None (no look-up needed)."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    key_id = key[len(KEY_PREFIX):].split("_", 1)[0]
    return key_id if _KEY_ID.match(key_id) else None


# `last_used_at` is written at most this often per key (and gateway process).
LAST_USED_EVERY = 60.0
# How long a rotated key's old secret keeps working by default.
ROTATION_GRACE = timedelta(hours=24)


class ApiKeys:
    """API keys, stored hashed. `authenticate` keeps a key's record for `CACHE_SECONDS` (so a busy
    gateway reads the store once per key, not once per request); a revocation takes effect within
    that time in every gateway process."""

    def __init__(self, db: Database, *, cache_seconds: float = CACHE_SECONDS) -> None:
        self.db = db
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Row[Any]]] = {}  # key id -> (when read, its row)
        self._unknown: OrderedDict[str, float] = OrderedDict()  # the negative cache: key id -> when seen
        self.lookups = 0  # store reads by `authenticate` (tests and metrics)
        self._used: dict[str, float] = {}
        self.audit = AuditTrail(db)

    async def _audit(self, rec: ApiKeyRecord, action: str, actor: str, detail: dict[str, object]) -> None:
        await self.audit.record(workflow_id=f"api-key:{rec.key_id}", plant=",".join(rec.plants or [])[:10],
                                order="", actor=actor[:100], action=action,
                                detail={"key_id": rec.key_id, "name": rec.name, "role": rec.role, **detail})

    def needs_lookup(self, key: str) -> bool:
        """Would `authenticate(key)` read the store? (False for malformed keys and cached ids.)"""
        key_id = key_id_of(key)
        if key_id is None:
            return False
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return False
        seen = self._unknown.get(key_id)
        return seen is None or now - seen >= NEGATIVE_CACHE_SECONDS

    async def create(self, name: str, role: str, plants: list[str], *, kind: str | None = None,
                     sources: list[str] | None = None, expires_at: datetime | None = None,
                     actor: str = "cli") -> tuple[KeyInfo, str]:
        """Create a key; returns its record and the key itself (shown once, never stored).

        `kind`: the source kind of a plant-system (mes, qms, wms) or edge (edge) key; `sources`: the
        `source` prefixes it may speak for (default: its kind)."""
        if role not in ROLES:
            raise ApiKeyError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        if kind is not None and kind not in ROLE_KINDS.get(role, ()):
            allowed = ", ".join(ROLE_KINDS.get(role, ())) or "none"
            raise ApiKeyError(f"kind {kind!r} does not fit role {role!r} (its kinds: {allowed})")
        if sources is not None:
            sources = sorted({s.strip() for s in sources if s.strip()})
            if not sources:
                raise ApiKeyError("--sources needs at least one source prefix")
        plants = sorted({p.strip() for p in plants if p.strip()})
        if not plants:
            raise ApiKeyError("a key needs at least one plant (or '*' for all)")
        if not name.strip():
            raise ApiKeyError("a key needs a name")
        key_id = secrets.token_hex(6)
        key = _new_key(key_id)
        rec = ApiKeyRecord(key_id=key_id, name=name.strip(), role=role, plants=plants, key_hash=_hash(key),
                           kind=kind, sources=sources, expires_at=expires_at)
        async with self.db.sessions() as session:
            if await session.scalar(select(ApiKeyRecord).where(ApiKeyRecord.name == rec.name)) is not None:
                raise ApiKeyError(f"a key named {rec.name!r} exists; revoke it or pick another name")
            session.add(rec)
            await session.commit()
        await self._audit(rec, "api_key_created", actor, {
            "plants": plants, "kind": kind, "expires_at": expires_at.isoformat() if expires_at else None})
        return _info(rec), key

    async def rotate(self, name_or_id: str, *, grace: timedelta = ROTATION_GRACE, expires_at: datetime | None = None,
                     actor: str = "cli") -> tuple[KeyInfo, str] | None:
        """A new secret for an active key (same id, name, rights); the old one works `grace` longer.

        None when there is no active key of that name or id."""
        async with self.db.sessions() as session:
            rec = await session.scalar(select(ApiKeyRecord).where(
                (ApiKeyRecord.name == name_or_id) | (ApiKeyRecord.key_id == name_or_id)))
            if rec is None or rec.revoked_at is not None:
                return None
            key = _new_key(rec.key_id)
            rec.previous_hash, rec.previous_until = rec.key_hash, utcnow() + grace
            rec.key_hash = _hash(key)
            if expires_at is not None:
                rec.expires_at = expires_at
            await session.commit()
        self._cache.clear()
        await self._audit(rec, "api_key_rotated", actor, {"old_secret_until": rec.previous_until.isoformat()})
        return _info(rec), key

    async def authenticate(self, key: str) -> KeyInfo | None:
        """The key's record when the key is valid and not revoked, else None."""
        key_id = key_id_of(key)
        if key_id is None:
            return None
        now = time.monotonic()
        cached = self._cache.get(key_id)
        rec: Row[Any] | None
        if cached is not None and now - cached[0] < self.cache_seconds:
            rec = cached[1]
        elif (seen := self._unknown.get(key_id)) is not None and now - seen < NEGATIVE_CACHE_SECONDS:
            self._unknown.move_to_end(key_id)
            return None
        else:
            self.lookups += 1
            async with self.db.engine.connect() as conn:  # a Core row: no ORM object on the request path
                rec = (await conn.execute(select(ApiKeyRecord.__table__)
                                          .where(ApiKeyRecord.key_id == key_id))).first()
            if rec is None:
                self._unknown[key_id] = now
                self._unknown.move_to_end(key_id)
                while len(self._unknown) > NEGATIVE_CACHE_SIZE:
                    self._unknown.popitem(last=False)
            else:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[key_id] = (now, rec)
        if rec is None or rec.revoked_at is not None:
            return None
        wall = utcnow()
        expires = _aware(rec.expires_at)
        if expires is not None and expires <= wall:
            return None
        digest = _hash(key)
        if not hmac.compare_digest(rec.key_hash, digest):
            previous_until = _aware(rec.previous_until)
            if not (rec.previous_hash and previous_until and previous_until > wall
                    and hmac.compare_digest(rec.previous_hash, digest)):
                return None
        if now - self._used.get(key_id, -LAST_USED_EVERY) >= LAST_USED_EVERY:
            self._used[key_id] = now
            async with self.db.engine.begin() as conn:
                await conn.execute(update(ApiKeyRecord).where(ApiKeyRecord.key_id == key_id)
                                   .values(last_used_at=wall))
        return _info(rec)

    async def get(self, key_id: str) -> KeyInfo | None:
        async with self.db.sessions() as session:
            rec = await session.get(ApiKeyRecord, key_id)
        return _info(rec) if rec is not None else None

    async def all_keys(self) -> list[KeyInfo]:
        async with self.db.sessions() as session:
            recs = (await session.scalars(select(ApiKeyRecord).order_by(ApiKeyRecord.created_at))).all()
        return [_info(r) for r in recs]

    async def revoke(self, name_or_id: str, *, actor: str = "cli") -> bool:
        async with self.db.sessions() as session:
            rec = await session.scalar(
                select(ApiKeyRecord).where(
                    (ApiKeyRecord.name == name_or_id) | (ApiKeyRecord.key_id == name_or_id)
                )
            )
            if rec is None or rec.revoked_at is not None:
                return False
            rec.revoked_at = utcnow()
            await session.commit()
            self._cache.clear()
        await self._audit(rec, "api_key_revoked", actor, {})
        return True
