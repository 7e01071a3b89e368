"""The Akte app served by uvicorn on 127.0.0.1, for tests that need real HTTP."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import httpx2 as httpx
import uvicorn
from fastapi import FastAPI

from service import AkteService


@dataclass
class ServedApp:
    """The Akte app under uvicorn on 127.0.0.1, and a client talking to it over HTTP."""

    app: FastAPI
    service: AkteService
    base_url: str = ""
    http: httpx.Client = field(init=False)
    _server: uvicorn.Server = field(init=False)
    _thread: threading.Thread = field(init=False)

    def start(self) -> None:
        # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets that say so,
        # and without it every keep-alive request waits 40 ms for a delayed ACK.
        listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listening.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{listening.getsockname()[1]}"
        # log_config=None: uvicorn would otherwise reconfigure its loggers for the whole
        # process, and tests of our own logging run in the same process.
        config = uvicorn.Config(self.app, log_config=None, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [listening]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 120  # generous: imports alone take 15 s on a loaded machine
        while not self._server.started:
            assert self._thread.is_alive(), "uvicorn did not start"
            assert time.monotonic() < deadline, "uvicorn did not start within 120 s"
            time.sleep(0.01)
        self.http = httpx.Client(base_url=self.base_url, trust_env=False, timeout=60)

    def stop(self) -> None:
        self.http.close()
        # Every response has been read: there is nothing to wait for in a graceful stop.
        self._server.should_exit = self._server.force_exit = True
        self._thread.join(timeout=10)

    def events_recorded(self) -> int:
        return self.service.recorder.max_notification_id() or 0
