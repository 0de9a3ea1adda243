"""`plantbridge dev` as a process supervisor: a child that dies is started again, with backoff.

Each death is logged (the console and the child's own log), the next start waits 1 s, 2 s, 4 s ... at
most `max_s`; a child that stayed up `stable_s` starts over from 1 s. A child that dies `give_up_after`
times in a row without staying up is given up: the stack stops (an optional child, e.g. the edge
agent, is only reported). The Temporal dev server starts again on its database file (same argv), so
the sagas go on where they were; `dev.json`'s pids are rewritten after each restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from plantbridge_devtools.stack import Service, Stack


@dataclass
class ChildState:
    started: float
    failures: int = 0  # deaths in a row, each before the child stayed up `stable_s`
    restarts: int = 0
    due: float | None = None  # when the next start is due (the child is dead and waiting)
    given_up: bool = False


class Supervisor:
    def __init__(self, stack: Stack, say: Callable[[str], None], *, base_s: float = 1.0, max_s: float = 10.0,
                 stable_s: float = 30.0, give_up_after: int = 8) -> None:
        self.stack = stack
        self.say = say
        self.base_s, self.max_s, self.stable_s, self.give_up_after = base_s, max_s, stable_s, give_up_after
        now = time.monotonic()
        self.children = {s.name: ChildState(started=now) for s in stack.services}

    def tick(self, now: float | None = None) -> list[Service]:
        """Look at every child once: schedule or do restarts; the non-optional children given up (fatal)."""
        now = time.monotonic() if now is None else now
        fatal: list[Service] = []
        for service in self.stack.services:
            st = self.children.setdefault(service.name, ChildState(started=now))
            if st.given_up:
                continue
            if service.alive():
                if st.failures and now - st.started >= self.stable_s:
                    st.failures = 0
                continue
            if st.due is None:  # just found dead
                rc = service.process.returncode if service.process is not None else None
                st.failures = st.failures + 1 if now - st.started < self.stable_s else 1
                log = self.stack.state_dir / f"{service.name}.log"
                if st.failures > self.give_up_after:
                    st.given_up = True
                    self.say(f"{service.name} exited ({rc}) {st.failures} times in a row; giving up; see {log}")
                    if not service.optional:
                        fatal.append(service)
                    continue
                delay = min(self.base_s * 2 ** (st.failures - 1), self.max_s)
                st.due = now + delay
                self.say(f"{service.name} (pid {service.pid}) exited ({rc}); restarting in {delay:.0f} s "
                         f"(restart {st.restarts + 1}); see {log}")
                continue
            if now >= st.due:
                self.stack.respawn(service)
                st.started, st.due = now, None
                st.restarts += 1
                self.stack.write_dev_file()
                self.say(f"{service.name} restarted (pid {service.pid})")
        return fatal

    def restarts(self) -> dict[str, int]:
        return {name: st.restarts for name, st in self.children.items() if st.restarts}
