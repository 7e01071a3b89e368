"""Attachments of online applications sent by reference: fetched from the portal, bounded.

A ``Portal.Aufenthaltsantrag`` carries each attachment either inline (``inhalt``, base64)
or as a reference (``referenz``: ``uri``, ``sha256``, ``groesse`` in bytes), so that large
scans need not travel through the broker. :class:`AttachmentFetcher` fetches a reference:

- only from the portal's configured base address (``AKTE_INBOX_PORTAL_BASE_URL``): same
  scheme, host and port, a path below the base's, no ``.``/``..`` segments, no user
  information; anything else is refused before a connection is made (a message must not
  make Akte fetch from an address of the sender's choosing);
- with bounded size (the declared size, at most :data:`MAX_ATTACHMENT_BYTES`; a body that
  is longer or shorter than declared is refused, reading stops one byte past it) and
  bounded time (``timeout`` seconds for the whole transfer: connecting, the headers and
  the body together, not per read: a watchdog cuts the connection at the deadline);
- within a budget per message (:meth:`AttachmentFetcher.for_message`): all referenced
  attachments of one message together at most ``message_bytes`` bytes and
  ``message_timeout`` seconds, which stays below the inbox's acknowledgement deadline
  (``ack_wait``, adapters/inbox/consumer.py), so that the broker does not deliver the
  message a second time while the first delivery is still fetching;
- without following redirects and without proxies from the environment;
- and the bytes' SHA-256 must be the declared one.

A reference that fails any of these raises :class:`AttachmentUnavailable`; the
application is then returned to its sender (:mod:`adapters.inbox.messages`), never
half-recorded. Its message names the rule, never the address or the bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Final
from urllib.parse import unquote, urlsplit

MAX_ATTACHMENT_BYTES: Final = 20 * 1024 * 1024
DEFAULT_TIMEOUT_SECONDS: Final = 10.0
MAX_MESSAGE_BYTES: Final = 2 * MAX_ATTACHMENT_BYTES
"""All referenced attachments of one message together (they are held in memory)."""
DEFAULT_MESSAGE_TIMEOUT_SECONDS: Final = 20.0
"""All fetches of one message together: below the inbox's ``ack_wait`` (30 s)."""
_CHUNK: Final = 64 * 1024
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


class AttachmentUnavailable(ValueError):
    """A referenced attachment that is not the portal's, cannot be fetched in time, or
    whose size or hash is not the declared one."""


@dataclass
class _Budget:
    """What is left for one message: bytes, and the time until ``deadline``."""

    deadline: float
    bytes_left: int


def _origin(scheme: str, host: str | None, port: int | None) -> tuple[str, str, int]:
    return (scheme.lower(), (host or "").lower(), port or _DEFAULT_PORTS.get(scheme.lower(), 0))


@dataclass(frozen=True)
class AttachmentFetcher:
    """Fetches referenced attachments from the portal at ``base_url``."""

    base_url: str
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    max_bytes: int = MAX_ATTACHMENT_BYTES
    message_timeout: float = DEFAULT_MESSAGE_TIMEOUT_SECONDS
    message_bytes: int = MAX_MESSAGE_BYTES
    _budget: _Budget | None = field(default=None, compare=False, repr=False)

    def for_message(self) -> AttachmentFetcher:
        """A fetcher for the attachments of one message: they share one budget of
        ``message_bytes`` and ``message_timeout`` seconds (from now)."""
        budget = _Budget(time.monotonic() + self.message_timeout, self.message_bytes)
        return replace(self, _budget=budget)

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            msg = "the portal's base address must be an http(s) URL with a host"
            raise ValueError(msg)

    def check_address(self, uri: str) -> None:
        """Refuse ``uri`` unless it lies below the base address."""
        base, target = urlsplit(self.base_url), urlsplit(uri)
        try:
            same_origin = _origin(target.scheme, target.hostname, target.port) == _origin(
                base.scheme, base.hostname, base.port
            )
        except ValueError:  # a port that is no number
            same_origin = False
        prefix = base.path if base.path.endswith("/") else base.path + "/"
        segments = unquote(target.path).replace("\\", "/").split("/")
        if (
            not same_origin
            or target.username is not None
            or target.password is not None
            or not target.path.startswith(prefix)
            or any(segment in (".", "..") for segment in segments)
        ):
            raise AttachmentUnavailable("not an address of the portal's attachments")

    def fetch(self, uri: str, *, sha256: str, size: int) -> bytes:
        """The attachment's bytes, checked against the declared ``size`` and ``sha256``."""
        self.check_address(uri)
        if size > self.max_bytes:
            raise AttachmentUnavailable(f"larger than {self.max_bytes} bytes")
        deadline = time.monotonic() + self.timeout
        if self._budget is not None:
            if size > self._budget.bytes_left:
                msg = f"the message's attachments are larger than {self.message_bytes} bytes"
                raise AttachmentUnavailable(msg)
            self._budget.bytes_left -= size
            deadline = min(deadline, self._budget.deadline)
        transfer = _Transfer(uri, size + 1, deadline)
        # The transfer runs in its own thread so that no step of it (name lookup,
        # connecting, headers that trickle in) can hold the worker past the deadline;
        # at the deadline its connection is cut, which ends the thread's reads too.
        worker = threading.Thread(target=transfer.run, name="akte-attachment", daemon=True)
        worker.start()
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            transfer.abort()
            raise AttachmentUnavailable("cannot be fetched (timed out)")
        data = transfer.result()
        if len(data) != size:
            raise AttachmentUnavailable("its size is not the declared size")
        if hashlib.sha256(data).hexdigest() != sha256.lower():
            raise AttachmentUnavailable("its SHA-256 is not the declared one")
        return data


class _Transfer:
    """One GET of one attachment (http.client: no redirects followed, no proxies)."""

    def __init__(self, uri: str, limit: int, deadline: float) -> None:
        self._uri = uri
        self._limit = limit
        self._deadline = deadline
        self._lock = threading.Lock()
        self._connection: http.client.HTTPConnection | None = None
        self._aborted = False
        self._data: bytes | None = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._data = self._get()
        except BaseException as error:  # handed to the waiting worker by result()
            self._error = error
        finally:
            with self._lock:
                if self._connection is not None:
                    self._connection.close()

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            connection = self._connection
            sock = None if connection is None else connection.sock
            if sock is not None:
                with contextlib.suppress(OSError):  # already closed: nothing to cut
                    sock.shutdown(socket.SHUT_RDWR)

    def result(self) -> bytes:
        error = self._error
        if isinstance(error, AttachmentUnavailable):
            raise error
        if isinstance(error, TimeoutError):
            raise AttachmentUnavailable("cannot be fetched (timed out)") from None
        if isinstance(error, (http.client.HTTPException, OSError)):
            raise AttachmentUnavailable(f"cannot be fetched ({type(error).__name__})") from None
        if error is not None:
            raise error
        assert self._data is not None
        return self._data

    def _get(self) -> bytes:
        parts = urlsplit(self._uri)
        left = max(0.001, self._deadline - time.monotonic())
        kind = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = kind(parts.hostname or "", parts.port, timeout=left)
        with self._lock:
            if self._aborted:
                raise AttachmentUnavailable("cannot be fetched (timed out)")
            self._connection = connection
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request("GET", path, headers={"Accept": "*/*"})
        response = connection.getresponse()
        if 300 <= response.status < 400:
            raise AttachmentUnavailable("the portal answered with a redirect")
        if response.status != 200:
            raise AttachmentUnavailable(f"cannot be fetched (HTTP {response.status})")
        declared = response.headers.get("Content-Length")
        size = self._limit - 1
        if declared is not None and declared.strip().isdigit() and int(declared) != size:
            raise AttachmentUnavailable("the portal's size is not the declared size")
        return _read_bounded(response, self._limit, self._deadline)


def _read_bounded(response: http.client.HTTPResponse, limit: int, deadline: float) -> bytes:
    """At most ``limit`` bytes, before ``deadline`` (each read waits for what is left of
    the time, so a portal that trickles cannot hold the worker beyond it)."""
    chunks: list[bytes] = []
    read = 0
    while read < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AttachmentUnavailable("cannot be fetched (timed out)")
        if response.fp is not None and hasattr(response.fp, "raw"):
            sock = getattr(response.fp.raw, "_sock", None)
            if sock is not None:
                sock.settimeout(left)
        # read1: one read of the socket, not as many as it takes to fill the chunk.
        chunk = response.read1(min(_CHUNK, limit - read))
        if not chunk:
            break
        chunks.append(chunk)
        read += len(chunk)
    return b"".join(chunks)


__all__ = [
    "DEFAULT_MESSAGE_TIMEOUT_SECONDS",
    "DEFAULT_TIMEOUT_SECONDS",
    "MAX_ATTACHMENT_BYTES",
    "MAX_MESSAGE_BYTES",
    "AttachmentFetcher",
    "AttachmentUnavailable",
]
