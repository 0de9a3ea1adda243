"""MQTT test helpers: the machine's Mosquitto (127.0.0.1:1883) or a private one on a free port that a
test may stop and start again (``mosquitto -p PORT`` with persistence in a temporary folder)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

SYSTEM_BROKER = ("127.0.0.1", 1883)


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_system_broker() -> None:
    if not answers(*SYSTEM_BROKER):
        pytest.skip("no MQTT broker answers on 127.0.0.1:1883 (Mosquitto is a local service of the dev machines)")


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateBroker:
    """A Mosquitto of the test's own, on a free port, persisting its sessions and queued QoS 1 messages
    (in a temporary folder) across ``restart()``, as a production broker configured for it does."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
        if binary is None:
            pytest.skip("the mosquitto binary is not installed: cannot run a broker of the test's own to restart")
        self.binary = binary
        self.port = free_port()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {folder}/\nautosave_interval 1\nlog_dest file {folder}/mosquitto.log\n"
            "max_queued_messages 10000\n"
            # started as root, mosquitto would drop to its own user, which cannot write the test's folder
            + ("user root\n" if os.geteuid() == 0 else ""),
            encoding="utf-8",
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.process = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not answers("127.0.0.1", self.port):
            if self.process.poll() is not None:
                log = (self.folder / "mosquitto.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"mosquitto exited ({self.process.returncode}): {log}")
            if time.monotonic() > deadline:
                raise AssertionError("mosquitto did not start")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """SIGTERM: Mosquitto writes its persistence file and exits."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait, 5)

    async def restart(self, down_s: float = 0.0) -> None:
        await self.stop()
        await asyncio.sleep(down_s)
        await self.start()


class TopicRecorder:
    """A dashboard's view of the UNS: subscribes to a topic filter on a broker and records every message
    (topic, JSON payload, retain flag). ``clear_retained`` removes what the test left retained."""

    def __init__(self, topic_filter: str, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.topic_filter, self.host, self.port = topic_filter, host, port
        self.messages: list[tuple[str, Any, bool]] = []
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> TopicRecorder:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), timeout=10)
        return self

    async def _run(self) -> None:
        async with aiomqtt.Client(self.host, self.port, identifier=unique("uns-sub-")) as client:
            await client.subscribe(self.topic_filter, qos=1)
            self._ready.set()
            async for message in client.messages:
                raw = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                self.messages.append((str(message.topic), json.loads(raw) if raw else None, bool(message.retain)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def on(self, topic: str) -> list[Any]:
        return [payload for t, payload, _ in self.messages if t == topic]

    async def clear_retained(self) -> None:
        topics = {t for t, _, _ in self.messages}
        async with aiomqtt.Client(self.host, self.port, identifier=unique("uns-clear-")) as client:
            for topic in topics:
                await client.publish(topic, b"", qos=1, retain=True)
