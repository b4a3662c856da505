"""Sealing secrets that travel through the event log (the Jupyter token of a ready server).

The log is read by analytics consumers and operators; a token in plain text
there would let any of them open other people's servers. The launcher seals the
token with AES-GCM under a key only it and the gateway hold, and the gateway
unseals it for the client that launched. The launch id is the associated data,
so a sealed token copied into another launch's event does not open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .settings import Settings, SettingsError

__all__ = ["TokenSealer", "SealError", "load_sealer"]

KEY_FILE_NAME = "token.key"


class SealError(Exception):
    """A sealed value is damaged, or was sealed under another key."""


class TokenSealer:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a token key is 32 bytes")
        self._aead = AESGCM(key)
        self._watch_key = hmac.new(key, b"binderflow watch keys", hashlib.sha256).digest()

    def watch_key(self, launch_id: str) -> str:
        """A short capability to watch `launch_id` (resume or attach): launch ids are
        in the log analytics consumers read, so the id alone must not open a stream
        that ends with the server's token."""
        return hmac.new(self._watch_key, launch_id.encode(), hashlib.sha256).hexdigest()[:20]

    def check_watch_key(self, launch_id: str, key: str) -> bool:
        return hmac.compare_digest(self.watch_key(launch_id), key)

    def seal(self, secret: str, launch_id: str) -> str:
        nonce = os.urandom(12)
        box = self._aead.encrypt(nonce, secret.encode(), launch_id.encode())
        return "v1." + base64.urlsafe_b64encode(nonce + box).decode().rstrip("=")

    def unseal(self, sealed: str, launch_id: str) -> str:
        version, _, body = sealed.partition(".")
        if version != "v1" or not body:
            raise SealError("not a sealed value")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            return self._aead.decrypt(raw[:12], raw[12:], launch_id.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise SealError("the sealed value does not open with this key") from exc


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except ValueError:
        key = b""
    if len(key) != 32:
        raise SettingsError(f"invalid {where}: a token key is 32 bytes, base64-encoded")
    return key


def load_sealer(settings: Settings) -> TokenSealer:
    """The sealer for this installation: events.token_key, or the key file in data_dir (made once)."""
    if settings.events.token_key:
        return TokenSealer(_decode_key(settings.events.token_key, "setting 'events.token_key'"))
    path = Path(settings.data_path) / KEY_FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two services starting at once agree on the one key written first.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(base64.urlsafe_b64encode(os.urandom(32)).decode())
    for _ in range(50):
        text = path.read_text()
        if text.strip():
            return TokenSealer(_decode_key(text, f"key file {path}"))

        time.sleep(0.02)  # the writer is between open and write
    raise SettingsError(f"key file {path} is empty")
