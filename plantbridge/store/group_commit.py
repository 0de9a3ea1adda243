"""Group commit: the writes of concurrent requests share one transaction, and each caller returns only once its
write is committed.

A caller hands its write (statements with their bind parameters, `Write`) to `run` and waits for it. One writer
takes every write queued at that moment, runs them in order in one transaction and commits once; writes queued
while it commits go into the next transaction. A lone write is committed at once (nothing waits for company).
Under load the commits per write drop (each is a durable commit: with SQLite's synchronous=FULL an fsync, plus a
connection check-out, BEGIN, COMMIT and reset), while what a caller sees does not change: its write is durable
when `run` returns, as with a transaction of its own.

On SQLite a group is run in one hand-off to a thread of its own, with a connection of its own (the statements
compiled once, their parameters converted by the columns' types as SQLAlchemy does): not one hand-off per cursor
operation, as through the async driver. Other backends run the statements through the engine.

A statement that raises fails its write alone: the transaction is rolled back and the writes that were in it run
again, each in a transaction of its own. A failed commit fails every write in it (whether it took effect cannot be
told, as with a transaction of one's own).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.dml import UpdateBase

from plantbridge.store.engine import apply_sqlite_pragmas

T = TypeVar("T")


class Step(NamedTuple):
    """An INSERT or UPDATE (built once) and its bind parameters."""

    stmt: UpdateBase
    params: dict[str, Any]


class Done(NamedTuple):
    """What a step gave: the rows it returned (none for a statement without RETURNING) and the rows it touched."""

    rows: Sequence[Sequence[Any]]
    rowcount: int


@dataclass(frozen=True)
class Write(Generic[T]):
    """Steps run in order in one transaction, and the caller's result made of what they gave."""

    steps: list[Step]
    result: Callable[[list[Done]], T]


class _StepFailed(Exception):
    """A statement raised inside a shared transaction (the writes in it run again on their own)."""


_Queued = tuple[Write[Any], "asyncio.Future[Any]"]


class GroupCommit:
    """Writes to one engine, committed in groups (see the module's docstring)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._backend: _Backend = _sqlite_backend(engine) or _EngineBackend(engine)
        self._queue: list[_Queued] = []
        self._writer: asyncio.Task[None] | None = None
        self.commits = 0  # transactions committed, and the writes in them (writes per commit: a measure)
        self.writes = 0

    async def run(self, write: Write[T]) -> T:
        """Run `write` in a transaction (shared with other callers' writes); its result once committed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        self._queue.append((write, done))
        if self._writer is None or self._writer.done() or self._writer.get_loop() is not loop:
            self._writer = loop.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        try:
            while self._queue:
                group, self._queue = self._queue, []
                await self._commit(group)
        finally:  # cancelled (the loop is closing): what is left was not written
            left, self._queue = self._queue, []
            for _write, done in left:
                if not done.done():
                    done.set_exception(RuntimeError("the store's writer was stopped before this write"))

    async def _commit(self, group: list[_Queued]) -> None:
        try:
            results = await self._backend.commit([w.steps for w, _done in group], shared=len(group) > 1)
        except _StepFailed:  # each on its own: the write whose statement raised fails alone
            for queued in group:
                await self._commit([queued])
            return
        except Exception as err:  # the statement of a lone write, or the commit, failed: so did every write in it
            for _write, done in group:
                if not done.done():
                    done.set_exception(err)
            return
        self.commits += 1
        self.writes += len(group)
        for (write, done), dones in zip(group, results, strict=True):
            if done.done():  # the caller was cancelled meanwhile
                continue
            try:
                done.set_result(write.result(dones))
            except Exception as err:  # the caller's reading of what its statements gave
                done.set_exception(err)


class _Backend:
    async def commit(self, writes: list[list[Step]], *, shared: bool) -> list[list[Done]]:
        """Run the writes' steps in one transaction and commit; `_StepFailed` (rolled back) when a step raised in
        a `shared` one."""
        raise NotImplementedError


class _EngineBackend(_Backend):
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def commit(self, writes: list[list[Step]], *, shared: bool) -> list[list[Done]]:
        out: list[list[Done]] = []
        async with self.engine.begin() as conn:
            for steps in writes:
                dones: list[Done] = []
                for step in steps:
                    try:
                        result = await conn.execute(step.stmt, step.params)
                        dones.append(Done(result.all() if result.returns_rows else [], result.rowcount))
                    except Exception as err:
                        if shared:
                            raise _StepFailed from err
                        raise
                out.append(dones)
        return out


class _Compiled:
    """A statement compiled for SQLite once: its SQL and, per positional parameter, its name, its value when the
    statement holds it, and the conversion of its type (as SQLAlchemy's execution does)."""

    def __init__(self, stmt: UpdateBase, dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.params: list[tuple[str, Any, Callable[[Any], Any] | None]] = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            self.params.append((name, bind.effective_value, bind.type.dialect_impl(dialect).bind_processor(dialect)))

    def args(self, values: dict[str, Any]) -> tuple[Any, ...]:
        out = []
        for name, held, process in self.params:
            value = values[name] if name in values else held
            out.append(process(value) if process is not None else value)
        return tuple(out)


class _SqliteBackend(_Backend):
    """A group in one hand-off: a thread of its own, a sqlite3 connection of its own (the engine's pragmas)."""

    def __init__(self, path: str, dialect: Dialect) -> None:
        self.path = path
        self.dialect = dialect
        self._compiled: dict[int, _Compiled] = {}
        self._keep: list[UpdateBase] = []  # the statements compiled (their ids key `_compiled`)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="plantbridge-store-writer")
        self._conn: list[sqlite3.Connection] = []  # opened in the thread on the first write
        weakref.finalize(self, _close, self._executor, self._conn)

    def _prepared(self, stmt: UpdateBase) -> _Compiled:
        found = self._compiled.get(id(stmt))
        if found is None:
            found = self._compiled[id(stmt)] = _Compiled(stmt, self.dialect)
            self._keep.append(stmt)
        return found

    async def commit(self, writes: list[list[Step]], *, shared: bool) -> list[list[Done]]:
        prepared = [[(self._prepared(s.stmt), s.params) for s in steps] for steps in writes]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._in_thread, prepared, shared)

    def _connection(self) -> sqlite3.Connection:
        if not self._conn:  # transactions begun and committed here (BEGIN IMMEDIATE: the write lock at once)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            apply_sqlite_pragmas(conn)  # the engine's settings (synchronous=FULL: a 202 row survives power loss)
            self._conn.append(conn)
        return self._conn[0]

    def _in_thread(self, writes: list[list[tuple[_Compiled, dict[str, Any]]]], shared: bool) -> list[list[Done]]:
        conn = self._connection()
        out: list[list[Done]] = []
        try:
            _control(conn, "BEGIN IMMEDIATE")  # waits for the write lock (busy_timeout), as the engine's writes do
            for steps in writes:
                dones: list[Done] = []
                for compiled, values in steps:
                    args = compiled.args(values)
                    try:
                        cursor = conn.execute(compiled.sql, args)
                        dones.append(Done(cursor.fetchall(), cursor.rowcount))
                    except Exception as err:
                        if shared:
                            raise _StepFailed from err
                        raise _as_sqlalchemy(err, compiled.sql, args) from err
                out.append(dones)
            _control(conn, "COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        return out


def _control(conn: sqlite3.Connection, sql: str) -> None:
    try:
        conn.execute(sql)
    except sqlite3.Error as err:
        raise _as_sqlalchemy(err, sql, ()) from err


def _as_sqlalchemy(err: Exception, sql: str, args: tuple[Any, ...]) -> Exception:
    """A sqlite3 error as the engine would raise it (`sqlalchemy.exc.IntegrityError`, `OperationalError` ...)."""
    if not isinstance(err, sqlite3.Error):
        return err
    return DBAPIError.instance(sql, args, err, sqlite3.Error)


def _close(executor: ThreadPoolExecutor, conns: list[sqlite3.Connection]) -> None:
    """The writer is gone (or the interpreter exits): nothing uses its connection any more."""
    for conn in conns:
        with contextlib.suppress(Exception):
            conn.close()
    executor.shutdown(wait=False)


def _sqlite_backend(engine: AsyncEngine) -> _SqliteBackend | None:
    """The direct SQLite writer for a file database (None: the engine's own path)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return _SqliteBackend(url.database, engine.dialect)
