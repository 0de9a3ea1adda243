"""Logon and CSRF protection as SAP Gateway implements them.

- Basic authentication against the configured users; a valid session cookie also authenticates.
  Otherwise 401 with ``WWW-Authenticate: Basic realm="SAP NetWeaver Application Server [SID/client]"``.
- ``GET``/``HEAD`` with ``X-CSRF-Token: Fetch`` answers the session's token in ``x-csrf-token`` and
  sets the session cookie ``SAP_SESSIONID_<SID>_<client>`` (plus ``sap-usercontext``). Fetching again
  in the same session returns the same token.
- ``POST``/``PUT``/``PATCH``/``MERGE``/``DELETE`` need that token in ``X-CSRF-Token`` *and* the
  session cookie; otherwise 403 with ``x-csrf-token: Required`` and the body
  ``CSRF token validation failed``.
- ``expire_all()`` (admin) drops every session and token, as a session timeout would.

Sessions live in memory: a restart of the process ends them, as on a real system.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
from dataclasses import dataclass


@dataclass
class Session:
    id: str
    user: str
    token: str


class SessionManager:
    def __init__(self, users: dict[str, str], sid: str, client: str) -> None:
        self.users = {u.upper(): p for u, p in users.items()}
        self.cookie_name = f"SAP_SESSIONID_{sid}_{client}"
        self.realm = f"SAP NetWeaver Application Server [{sid}/{client}]"
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def basic_user(self, authorization: str | None) -> str | None:
        """The user of a valid ``Authorization: Basic`` header."""
        if not authorization or not authorization.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(authorization[6:].strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        expected = self.users.get(user.upper())
        if expected is None or not secrets.compare_digest(expected, password):
            return None
        return user.upper()

    def session(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            return self._sessions.get(session_id)

    def open(self, user: str) -> Session:
        session = Session(secrets.token_urlsafe(24), user, base64.b64encode(secrets.token_bytes(18)).decode())
        with self._lock:
            self._sessions[session.id] = session
        return session

    def valid_token(self, session: Session | None, token: str | None) -> bool:
        return session is not None and token is not None and secrets.compare_digest(session.token, token)

    def expire_all(self) -> int:
        with self._lock:
            count = len(self._sessions)
            self._sessions.clear()
        return count
