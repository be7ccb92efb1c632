"""The install HTTP server, fetched for real over 127.0.0.1."""
from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from tests.http_helpers import http_request
from vmlab.installserver import InstallServer


@pytest.fixture
def server():
    fetches: list[str] = []
    with InstallServer("127.0.0.1", {"ks.cfg": b"install\ntext\n"}, log=fetches.append) as srv:
        srv.fetches = fetches
        yield srv


def request(srv, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    return http_request("127.0.0.1", srv.port, method, path, body)


def test_the_lab_file_is_served_under_its_token(server):
    with urllib.request.urlopen(server.url_for("ks.cfg"), timeout=5) as response:
        assert response.status == 200 and response.read() == b"install\ntext\n"
    assert any(f"GET /{server.token}/ks.cfg 200" in line for line in server.fetches)
    assert all("install" not in line for line in server.fetches)  # content is never logged


@pytest.mark.parametrize("path", [
    "/ks.cfg", "/wrong-token/ks.cfg", "/{token}/other", "/{token}/../{token}/ks.cfg/..",
    "/{token}/%2e%2e/ks.cfg", "/{token}/./ks.cfg", "/{token}/ks.cfg/", "/{token}/done",
    "/{token}//etc/passwd"])
def test_anything_else_is_404(server, path):
    status, _ = request(server, "GET", path.format(token=server.token))
    assert status == 404


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_refused(server, method):
    assert request(server, method, f"/{server.token}/ks.cfg")[0] == 405


def test_done_callback_is_recorded(server):
    assert not server.wait_done(0.1)
    assert request(server, "POST", f"/{server.token}/done")[0] == 200
    assert server.wait_done(1)


def test_done_with_a_wrong_token_is_not_recorded(server):
    assert request(server, "POST", "/guess/done")[0] == 404
    assert not server.wait_done(0.2)


def test_oversized_body_is_refused(server):
    assert request(server, "POST", f"/{server.token}/done", b"x" * 100_000)[0] == 413
    assert not server.done.is_set()


def test_a_slow_client_does_not_block_others(server):
    """Served while a client that never finishes its request is still being waited for
    (a server that handled one client at a time would answer only after closing it)."""
    idle = socket.create_connection(("127.0.0.1", server.port))
    idle.sendall(b"GET /")  # and never finishes the request
    try:
        status, body = request(server, "GET", f"/{server.token}/ks.cfg")
        assert status == 200 and body == b"install\ntext\n"
        idle.setblocking(False)
        with pytest.raises(BlockingIOError):  # nothing to read, not closed: still waited for
            idle.recv(1)
    finally:
        idle.close()


def test_server_stops_cleanly():
    srv = InstallServer("127.0.0.1", {"a": b"1"})
    with srv:
        port = srv.port
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
