"""Faults on the wire between a driver and its real hypervisor, for the contract suite: the
driver talks to libvirtd or the vSphere simulator through a relay the test owns, which can
drop the connection or swallow one request. Nothing in the driver is replaced.

``UnixRelay``: a unix socket relayed to libvirtd's (``qemu+unix:///system?socket=...``);
``drop()`` closes both ends of every connection, as a libvirtd that died would.
``SoapRelay``: plain HTTP on 127.0.0.1 relayed to the simulator's HTTPS; it answers a
``ShutdownGuest`` call itself (done, as vSphere answers once it has asked VMware tools)
without passing it on, so the guest never shuts down: a guest that ignores the request.
"""
from __future__ import annotations

import http.client
import http.server
import socket
import ssl
import threading
from pathlib import Path

SHUTDOWN_GUEST_DONE = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    b'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
    b'<ShutdownGuestResponse xmlns="urn:vim25"></ShutdownGuestResponse>'
    b'</soapenv:Body></soapenv:Envelope>')


class UnixRelay:
    def __init__(self, path: Path, target: str) -> None:
        self.path, self.target = path, target
        self._open: list[socket.socket] = []
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # dropped
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.connect(self.target)
            self._open += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def drop(self) -> None:
        for sock in [self._listener, *self._open]:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass


class SoapRelay:
    """Plain HTTP to the simulator's HTTPS; ``attach(driver)`` points the driver's SOAP
    session (its cookie kept) here."""

    def __init__(self, host: str, port: int) -> None:
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if b"<ShutdownGuest" in body:
                    relay.swallowed += 1
                    self._answer(200, {"Content-Type": "text/xml; charset=utf-8"},
                                 SHUTDOWN_GUEST_DONE)
                    return
                upstream = http.client.HTTPSConnection(
                    host, port, context=ssl._create_unverified_context(), timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "content-length")}
                upstream.request("POST", self.path, body, headers)
                reply = upstream.getresponse()
                data = reply.read()
                upstream.close()
                self._answer(reply.status, {k: v for k, v in reply.getheaders() if k.lower()
                                            not in ("connection", "content-length",
                                                    "transfer-encoding")}, data)

            def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                return None

        self.swallowed = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def attach(self, driver) -> None:
        stub = driver.si._stub
        stub.DropConnections()
        port = self.server.server_address[1]
        stub.host, stub.port = f"127.0.0.1:{port}", port
        stub.scheme, stub.schemeArgs = http.client.HTTPConnection, {"timeout": 60}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
