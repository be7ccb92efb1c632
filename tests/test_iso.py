"""Install media: verified cached downloads with resume, boot files, the OEMDRV volume."""
from __future__ import annotations

import hashlib
import http.server
import io
import threading
from pathlib import Path

import pycdlib
import pytest

from vmlab.errors import InfrastructureError
from vmlab.iso import extract_boot_files, fetch_iso, install_boot_cmdline, make_oemdrv_iso


def fake_centos_iso(path: Path) -> tuple[bytes, bytes]:
    kernel, initrd = b"K" * 70_000, b"I" * 150_000
    image = pycdlib.PyCdlib()
    image.new(interchange_level=3, vol_ident="CentOS 7 x86_64", rock_ridge="1.09", joliet=3)
    image.add_directory("/IMAGES", rr_name="images", joliet_path="/images")
    image.add_directory("/IMAGES/PXEBOOT", rr_name="pxeboot", joliet_path="/images/pxeboot")
    for name, data in (("vmlinuz", kernel), ("initrd.img", initrd)):
        image.add_fp(io.BytesIO(data), len(data), f"/IMAGES/PXEBOOT/{name.upper()};1",
                     rr_name=name, joliet_path=f"/images/pxeboot/{name}")
    image.write(str(path))
    image.close()
    return kernel, initrd


class FlakyRangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves one file with Range support; cuts the first full response half-way."""

    payload = b""
    cut_first = True
    requests: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.requests.append(self.headers.get("Range") or "full")
        start = 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
        else:
            self.send_response(200)
        body = self.payload[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if start == 0 and type(self).cut_first:
            type(self).cut_first = False
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def http_file(tmp_path):
    payload = bytes(range(256)) * 4000
    FlakyRangeHandler.payload, FlakyRangeHandler.cut_first = payload, True
    FlakyRangeHandler.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FlakyRangeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/media.iso", payload, server
    server.shutdown()
    server.server_close()


def test_download_resumes_after_a_cut_and_is_then_cached(http_file, tmp_path):
    url, payload, server = http_file
    sha = hashlib.sha256(payload).hexdigest()
    with pytest.raises(InfrastructureError, match="cut off|resumes"):
        fetch_iso(url, sha, tmp_path / "cache")
    path = fetch_iso(url, sha, tmp_path / "cache")
    assert path.read_bytes() == payload
    assert FlakyRangeHandler.requests[0] == "full"
    assert FlakyRangeHandler.requests[1].startswith("bytes=") and \
        FlakyRangeHandler.requests[1] != "bytes=0-"
    server.shutdown()  # no network from now on
    assert fetch_iso(url, sha, tmp_path / "cache") == path


def test_checksum_mismatch_is_an_error_and_deletes_the_file(tmp_path):
    source = tmp_path / "src.iso"
    source.write_bytes(b"not what was promised")
    with pytest.raises(InfrastructureError, match="expected") as info:
        fetch_iso(source.as_uri(), "0" * 64, tmp_path / "cache")
    assert "deleted" in info.value.hint
    assert list((tmp_path / "cache").iterdir()) == []


def test_boot_files_are_read_out_of_the_iso(tmp_path):
    iso = tmp_path / "centos.iso"
    kernel, initrd = fake_centos_iso(iso)
    got_kernel, got_initrd = extract_boot_files(iso, tmp_path / "boot")
    assert got_kernel.read_bytes() == kernel and got_initrd.read_bytes() == initrd


def test_oemdrv_iso_carries_the_kickstart(tmp_path):
    iso = make_oemdrv_iso("install\ntext\n", tmp_path / "oemdrv.iso")
    image = pycdlib.PyCdlib()
    image.open(str(iso))
    try:
        assert image.pvd.volume_identifier.decode().strip() == "OEMDRV"
        out = io.BytesIO()
        image.get_file_from_iso_fp(out, rr_path="/ks.cfg")
        assert out.getvalue() == b"install\ntext\n"
    finally:
        image.close()


def test_install_cmdline_names_the_kickstart_and_stage2():
    line = install_boot_cmdline(ks_url="http://10.0.2.2:8000/t/ks.cfg",
                                stage2="hd:LABEL=CentOS\\x207\\x20x86_64")
    assert "inst.ks=http://10.0.2.2:8000/t/ks.cfg" in line
    assert "inst.stage2=hd:LABEL=CentOS\\x207\\x20x86_64" in line
