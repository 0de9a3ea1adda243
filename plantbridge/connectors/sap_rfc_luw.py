"""One RFC connection, one logical unit of work at a time: the LUW discipline of the RFC connector.

An RFC connection is not thread-safe and a LUW must not interleave with another, so `RfcLuw.run`
runs a whole unit of work (look-up, BAPI, ``BAPI_TRANSACTION_COMMIT`` or
``BAPI_TRANSACTION_ROLLBACK``) in one worker thread (``asyncio.to_thread``) under a per-connection
lock. `RfcLuw.post` calls a BAPI that needs a commit: ``BAPI_TRANSACTION_COMMIT`` (``WAIT='X'``)
exactly once when it succeeded, never after an error; any E/A message or exception is followed by
``BAPI_TRANSACTION_ROLLBACK``. Every exception of the RFC library is classified once, in `call`
(the table is in :mod:`sap_rfc_messages`). Kept apart from the connector (:mod:`sap_rfc`), which
decides which BAPIs a command needs, so that the transaction rules live in one place.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from plantbridge.connectors.errors import ConnectorError
from plantbridge.connectors.sap_rfc_messages import Outcome, RfcConnection, classify_exception, messages

T = TypeVar("T")


def read_table_rows(result: dict[str, Any], fields: list[str]) -> list[dict[str, str]]:
    """The rows of an ``RFC_READ_TABLE`` answer (``DELIMITER='|'``) as dicts by field name."""
    names = [str(f.get("FIELDNAME", "")).strip() for f in result.get("FIELDS", [])] or fields
    out = []
    for row in result.get("DATA", []):
        values = [v.strip() for v in str(row.get("WA", "")).split("|")]
        out.append(dict(zip(names, values, strict=False)))
    return out


class RfcLuw:
    """Calls on one `RfcConnection`, serialized by a lock; commit and rollback by the rules above."""

    def __init__(self, connection: RfcConnection) -> None:
        self.connection = connection
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self.connection.close()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` -- one whole unit of work -- in a worker thread under the lock."""

        def locked() -> T:
            with self._lock:
                return fn(*args)

        return await asyncio.to_thread(locked)

    def call(self, func: str, **params: Any) -> dict[str, Any]:
        try:
            return self.connection.call(func, **params)
        except ConnectorError:
            raise
        except Exception as exc:
            mapped = classify_exception(exc, func)
            if mapped is None:
                raise
            raise mapped from exc

    def rollback(self) -> None:
        try:
            self.connection.call("BAPI_TRANSACTION_ROLLBACK")
        except Exception:  # best effort: the session may be gone already
            pass

    def commit(self) -> Outcome:
        result = self.call("BAPI_TRANSACTION_COMMIT", WAIT="X")
        outcome = Outcome("BAPI_TRANSACTION_COMMIT", messages(result.get("RETURN")))
        if (err := outcome.error()) is not None:
            raise err
        return outcome

    def post(
        self, func: str, extract: Callable[[dict[str, Any]], list[Any]], **params: Any
    ) -> tuple[dict[str, Any], Outcome]:
        """Call a BAPI that needs a commit: on E/A or any error roll back, else commit once."""
        try:
            result = self.call(func, **params)
            outcome = Outcome(func, messages(*extract(result)))
            if (err := outcome.error()) is not None:
                raise err
        except BaseException:
            self.rollback()
            raise
        self.commit()
        return result, outcome

    def read_table(self, table: str, fields: list[str], where: list[str], rows: int = 0) -> list[dict[str, str]]:
        result = self.call(
            "RFC_READ_TABLE",
            QUERY_TABLE=table,
            DELIMITER="|",
            ROWCOUNT=rows,
            OPTIONS=[{"TEXT": line} for line in where],
            FIELDS=[{"FIELDNAME": f} for f in fields],
        )
        return read_table_rows(result, fields)
