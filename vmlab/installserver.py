"""The HTTP server an installer fetches its kickstart from.

It serves only one lab's files, under a random per-install path, on the address the guest
can reach; everything else is a 404. The kickstart's %post calls ``POST /<token>/done``,
which is recorded so that vmlab knows the install finished. Fetches are logged (path and
status, never content), request bodies are capped and slow clients time out.
"""
from __future__ import annotations

import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import unquote, urlsplit

MAX_BODY = 64 * 1024
CLIENT_TIMEOUT = 10.0


class InstallServer:
    def __init__(self, bind: str, files: Mapping[str, bytes | Path], *, port: int = 0,
                 token: str | None = None, log: Callable[[str], None] = lambda _: None,
                 url_host: str | None = None) -> None:
        self.token = token or secrets.token_urlsafe(16)
        self.files = dict(files)
        self.log = log
        self.done = threading.Event()
        self._server = ThreadingHTTPServer((bind, port), self._handler_class())
        self._server.daemon_threads = True
        self.host = url_host or bind
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="vmlab-install-server")

    # -- public ------------------------------------------------------------------------------
    def __enter__(self) -> "InstallServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread.is_alive():
            self._thread.join(5)

    def url_for(self, name: str) -> str:
        return f"http://{self.host}:{self.port}/{self.token}/{name}"

    @property
    def done_url(self) -> str:
        return self.url_for("done")

    def wait_done(self, timeout: float) -> bool:
        return self.done.wait(timeout)

    # -- request handling ---------------------------------------------------------------------
    def _resolve(self, raw_path: str) -> str | None:
        """The served name for a request path, or None: exact match only, no traversal."""
        path = unquote(urlsplit(raw_path).path)
        prefix = f"/{self.token}/"
        if not path.startswith(prefix):
            return None
        name = path[len(prefix):]
        return name if name in self.files else None

    def _content(self, name: str) -> bytes:
        value = self.files[name]
        return value if isinstance(value, bytes) else Path(value).read_bytes()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = CLIENT_TIMEOUT
            server_version = "vmlab"
            sys_version = ""

            def log_message(self, format: str, *args: object) -> None:
                return None

            def _reply(self, status: int, body: bytes = b"", head: bool = False) -> None:
                # logged first: once the body is out, the client may look for the line
                server.log(f"{self.client_address[0]} {self.command} {self.path.split('?')[0]} "
                           f"{status}")
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "text/plain" if status != 200
                                 else "application/octet-stream")
                self.end_headers()
                if body and not head:
                    self.wfile.write(body)

            def _get(self, head: bool) -> None:
                name = server._resolve(self.path)
                if name is None or name == "done":
                    self._reply(404, b"not found\n", head)
                    return
                self._reply(200, server._content(name), head)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._get(head=False)

            def do_HEAD(self) -> None:  # noqa: N802
                self._get(head=True)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._reply(413, b"too large\n")
                    self.close_connection = True
                    return
                if length:
                    self.rfile.read(length)
                if unquote(urlsplit(self.path).path) != f"/{server.token}/done":
                    self._reply(404, b"not found\n")
                    return
                server.done.set()
                self._reply(200, b"recorded\n")

            def _not_allowed(self) -> None:
                self._reply(405, b"method not allowed\n")

            do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed  # noqa: N815

        return Handler
