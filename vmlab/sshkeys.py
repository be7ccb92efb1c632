"""The lab's own SSH key pair, generated once per lab (private key 0600)."""
from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vmlab.state import write_atomic


def ensure_keypair(private_path: Path, comment: str) -> str:
    """Create ``private_path`` and ``<private_path>.pub`` if missing; return the public line."""
    public_path = private_path.with_name(private_path.name + ".pub")
    if private_path.is_file() and public_path.is_file():
        return public_path.read_text().strip()
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    line = f"{public} {comment}"
    write_atomic(private_path, private, mode=0o600)
    write_atomic(public_path, (line + "\n").encode(), mode=0o644)
    return line
