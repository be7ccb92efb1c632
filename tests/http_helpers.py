"""A plain HTTP request from the host, for the install server's tests."""
from __future__ import annotations

import http.client


def http_request(host: str, port: int, method: str, path: str,
                 body: bytes | None = None) -> tuple[int, bytes]:
    """(status, body) of one request on its own connection."""
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
