"""What every fake ticket system shares: a real HTTP server on 127.0.0.1, the request log, the
vendor's API description every request is checked against, and injected faults.

    with JiraServer() as jira:                      # or server.start() ... server.stop()
        dest = jira.destination(timeout=0.5)        # a Destination pointing at it
        jira.fail_next(1, status=429, retry_after=2)   # the next request answers 429
        jira.fail_next(2, status=500, writes_only=True)  # the next 2 writes answer 500
        jira.delay_next(1, seconds=1.0)             # sleeps, then handles it (a client timeout)
        jira.reset_next(1)                          # reads it, then RSTs the connection
        jira.crash_after_create_next()              # next create is stored, then dropped
        jira.slow_writes(0.3)                       # every write is applied, then answered late

Leaving the ``with`` block fails the test if any request broke the vendor's API description
(``violations``) or the fake itself crashed (``errors``).
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import secrets
import socket
import struct
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qsl, urlsplit

from revleak.tickets.base import Destination
from tests.ticket_fakes.spec import Spec

HIDDEN_HEADERS = {"authorization", "proxy-authorization", "cookie"}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


class LoggedRequest(NamedTuple):
    """One request as received (path includes the query string; no auth headers)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Request:
    """A parsed request handed to a fake's routes."""

    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the route pattern

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-able; None sends no body
    headers: dict[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """Raised by a route to answer with an error status."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.reply = Reply(status, body, headers or {})


class Drop(Exception):
    """Close the connection without replying."""


@dataclass
class _Fault:
    kind: str  # fail | delay | reset
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    writes_only: bool = False
    body: Any = None


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out or die go away mid-reply: expected here, so stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "revleak-fake/1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle + delayed ACK
        # add ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        try:
            reply = self.server.fake._handle(self)
        except Drop:
            self._drop()
            return
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        if reply.status != 204:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _drop(self) -> None:
        """Abort the connection: SO_LINGER 0 makes the close send a TCP RST."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


Route = tuple[str, re.Pattern[str], Callable[[Request], Reply]]


class FakeServer:
    """Shared machinery: the HTTP server thread, spec checks, faults and the request log."""

    provider = "fake"
    spec: Spec | None = None  # the vendor's API description, when one is published

    def __init__(self, login: str | None, password: str | None):
        self.login = login
        self.password = password or "s3cret-" + secrets.token_urlsafe(18)
        self.tickets: dict[str, dict[str, Any]] = {}
        self.requests_log: list[LoggedRequest] = []
        self.violations: list[str] = []  # requests the vendor's API description refuses
        self.errors: list[str] = []  # bugs in the fake itself (tracebacks)
        self.lock = threading.RLock()
        self._faults: deque[_Fault] = deque()
        self._crashes = 0
        self._slow_writes = 0.0
        self._routes: list[Route] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> Self:
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"fake-{self.provider}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.stop()
        if exc_type is None:
            self.assert_clean()

    def assert_clean(self) -> None:
        """Fail unless every request conformed and the fake never crashed."""
        assert not self.violations, "\n".join(self.violations)
        assert not self.errors, "\n".join(self.errors)

    @property
    def port(self) -> int:
        assert self._httpd, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def destination(self, timeout: float = 1.0, **extra: Any) -> Destination:
        """A Destination for this server with its credentials; ``extra`` overrides defaults."""
        return Destination(self.provider, self.url, self.login, self.password,
                           {**self.default_extra(), **extra}, timeout)

    def connection_json(self, timeout: float = 1.0) -> str:
        """``AIRFLOW_CONN_REVLEAK_TICKETS`` for this server (Airflow's JSON form)."""
        parts = urlsplit(self.url)
        return json.dumps({"conn_type": "http", "host": f"http://{parts.hostname}",
                           "port": parts.port, "schema": parts.path.lstrip("/") or None,
                           "login": self.login, "password": self.password,
                           "extra": {"provider": self.provider, "timeout": timeout,
                                     **self.default_extra()}})

    def default_extra(self) -> dict[str, Any]:
        return {}

    # -- faults

    def fail_next(self, n: int = 1, status: int = 500, retry_after: float | str | None = None,
                  headers: dict[str, str] | None = None, writes_only: bool = False,
                  message: str = "injected fault") -> None:
        """Answer the next ``n`` requests (or writes) with ``status`` (and ``Retry-After``)."""
        self._queue(n, self.failure(status, retry_after, headers, writes_only, message))

    def failure(self, status: int, retry_after: float | str | None = None,
                headers: dict[str, str] | None = None, writes_only: bool = False,
                message: str = "injected fault") -> _Fault:
        """The fault ``fail_next`` queues."""
        hdrs = dict(headers or {})
        if retry_after is not None:
            hdrs["Retry-After"] = str(retry_after)
        return _Fault("fail", status=status, headers=hdrs, writes_only=writes_only,
                      body=self.error_body(status, message))

    def delay_next(self, n: int = 1, seconds: float = 1.0, writes_only: bool = False) -> None:
        """Sleep before handling the next ``n`` requests (they still take effect)."""
        self._queue(n, _Fault("delay", seconds=seconds, writes_only=writes_only))

    def reset_next(self, n: int = 1, writes_only: bool = False) -> None:
        """Read the next ``n`` requests, then reset the connection without a reply."""
        self._queue(n, _Fault("reset", writes_only=writes_only))

    def crash_after_create_next(self, n: int = 1) -> None:
        """The next ``n`` creates store their ticket, then drop the connection unanswered."""
        with self.lock:
            self._crashes += n

    def slow_writes(self, seconds: float) -> None:
        """Every write takes effect at once but is answered ``seconds`` later: the window in
        which a client that dies has written without knowing it."""
        self._slow_writes = seconds

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()
            self._crashes = 0
            self._slow_writes = 0.0

    def _queue(self, n: int, fault: _Fault) -> None:
        with self.lock:
            self._faults.extend([fault] * n)

    def faults_for(self, req: Request) -> deque[_Fault]:
        """The queue the request's fault comes from (a fake may keep endpoints apart)."""
        return self._faults

    def _fault_for(self, req: Request) -> _Fault | None:
        with self.lock:
            faults = self.faults_for(req)
            for i, fault in enumerate(faults):
                if not fault.writes_only or req.method in WRITES:
                    del faults[i]
                    return fault
        return None

    def _created(self) -> None:
        """Call right after a create is stored: crash here if asked to."""
        if self._crashes:
            self._crashes -= 1
            raise Drop

    # -- request handling

    def route(self, method: str, pattern: str, func: Callable[[Request], Reply]) -> None:
        self._routes.append((method, re.compile(pattern), func))

    def _read(self, h: _Handler) -> tuple[Request, list[tuple[str, str]]]:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if len(body) < length:
            raise Drop  # the client died mid-request: nothing to answer
        parts = urlsplit(h.path)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        shown = {k: v for k, v in h.headers.items() if k.lower() not in HIDDEN_HEADERS}
        with self.lock:
            self.requests_log.append(LoggedRequest(h.command, h.path, shown, body,
                                                   time.monotonic()))
        return Request(h.command, parts.path, dict(pairs), h.headers, body), pairs

    def _handle(self, h: _Handler) -> Reply:
        req, pairs = self._read(h)
        refusal = self.refusal(req, pairs)
        if refusal:
            with self.lock:
                self.violations.append(refusal)
            return Reply(400, self.error_body(400, refusal))
        fault = self._fault_for(req)
        if fault and fault.kind == "delay":
            time.sleep(fault.seconds)
        elif fault and fault.kind == "reset":
            raise Drop
        elif fault:
            return Reply(fault.status, fault.body, dict(fault.headers))
        try:
            with self.lock:
                reply = self._dispatch(req)
        except HttpError as exc:
            return exc.reply
        except Drop:
            raise
        except Exception:  # a bug in the fake: answer 500 and keep it for the test to see
            self.errors.append(traceback.format_exc())
            return Reply(500, self.error_body(500, "fake server bug"))
        if req.method in WRITES and self._slow_writes:
            time.sleep(self._slow_writes)
        return reply

    def refusal(self, req: Request, pairs: list[tuple[str, str]]) -> str | None:
        """Why the vendor's API description refuses this request (None when it conforms)."""
        if self.spec is None:
            return None
        return self.spec.refusal(req.method, req.path, pairs, dict(req.headers.items()),
                                 req.body)

    def _dispatch(self, req: Request) -> Reply:
        self.authenticate(req)
        path_matched = False
        for method, pattern, func in self._routes:
            m = pattern.fullmatch(req.path)
            if not m:
                continue
            path_matched = True
            if method == req.method:
                req.params = m.groupdict()
                if req.method in ("POST", "PUT", "PATCH"):
                    self.check_json(req)
                return func(req)
        if path_matched:
            raise HttpError(405, self.error_body(405, "Method Not Allowed"))
        raise HttpError(404, self.error_body(404, "Not Found"))

    # -- hooks for subclasses

    def authenticate(self, req: Request) -> None:
        """Basic auth by default; raise 401 when wrong."""
        expected = base64.b64encode(f"{self.login}:{self.password}".encode()).decode()
        got = req.headers.get("Authorization") or ""
        if not hmac.compare_digest(got.encode(), f"Basic {expected}".encode()):
            raise HttpError(401, self.error_body(401, "Unauthorized"),
                            {"WWW-Authenticate": 'Basic realm="fake"'})

    def check_json(self, req: Request) -> Any:
        ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise HttpError(415, self.error_body(415, "Unsupported Media Type"))
        try:
            return req.json()
        except ValueError:
            raise HttpError(400, self.error_body(400, "Problems parsing JSON")) from None

    def error_body(self, status: int, message: str) -> Any:
        return {"error": message}

    def bad(self, message: str, status: int = 400) -> HttpError:
        return HttpError(status, self.error_body(status, message))

    def body_object(self, req: Request) -> dict[str, Any]:
        data = req.json()
        if not isinstance(data, dict):
            raise self.bad("request body must be a JSON object")
        return data

    def comments(self, key: str) -> list[str]:
        """Plain text of the ticket's comments / work notes, oldest first."""
        return list(self.tickets[key]["comments"])

    def writes(self) -> list[LoggedRequest]:
        with self.lock:
            return [r for r in self.requests_log if r.method in WRITES]
