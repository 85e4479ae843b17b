"""DingTalk HTTP event-subscription crypto with pycryptodome.

Same layout as WeCom: key = b64decode(aes_key + "="), AES-256-CBC, IV = key[:16], plaintext =
random(16) + big-endian length (4 bytes) + message + owner key ($key: the AppKey, CorpId or
suiteKey), PKCS#7-padded to 32-byte blocks. Signature: sha1 over the sorted [token, timestamp,
nonce, encrypt], checked in constant time. Failures are CallbackRefused (403 signature or owner
key, 400 undecryptable payload).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct
from dataclasses import dataclass, field

from Crypto.Cipher import AES

BLOCK = 32


class CallbackRefused(Exception):
    """A callback to refuse with HTTP `status`; `reason` is short and safe to answer and log (it
    never carries a secret); `msg_id` is the platform's message id when it was known at the refusal."""

    def __init__(self, status: int, reason: str, *, msg_id: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.msg_id = msg_id


def _key(encoding_aes_key: str) -> bytes:
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(encoding_aes_key) != 43 or len(key) != 32:
        raise ValueError("the AES key must be DingTalk's 43-character base64 aes_key")
    return key


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()  # noqa: S324


@dataclass(frozen=True, slots=True)
class DingTalkCrypto:
    token: str = field(repr=False)
    aes_key: str = field(repr=False)
    owner_key: str

    def __post_init__(self) -> None:
        _key(self.aes_key)

    def sign(self, timestamp: str, nonce: str, encrypt: str) -> str:
        """The signature DingTalk expects over an encrypted reply (sha1 hex, as `signature`)."""
        return signature(self.token, timestamp, nonce, encrypt)

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), msg_signature.strip().lower().encode()):
            raise CallbackRefused(403, "signature does not match")

    def decrypt(self, encrypt: str) -> str:
        key = _key(self.aes_key)
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise CallbackRefused(400, "encrypt is not base64") from None
        if not raw or len(raw) % BLOCK:
            raise CallbackRefused(400, "encrypt is not a whole number of 32-byte blocks")
        plain = AES.new(key, AES.MODE_CBC, key[:16]).decrypt(raw)
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CallbackRefused(400, "encrypt has bad padding")
        body = plain[16:-pad]
        if len(body) < 4:
            raise CallbackRefused(400, "encrypt is too short")
        (length,) = struct.unpack(">I", body[:4])
        if length > len(body) - 4:
            raise CallbackRefused(400, "encrypt has a bad length")
        owner = body[4 + length :]
        if not hmac.compare_digest(owner, self.owner_key.encode()):
            raise CallbackRefused(403, "the event is for another app (owner key)")
        try:
            return body[4 : 4 + length].decode("utf-8")
        except UnicodeDecodeError:
            raise CallbackRefused(400, "the event is not UTF-8") from None

    def verify_and_decrypt(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        self.verify(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def encrypt(self, plaintext: str, *, random16: bytes | None = None) -> str:
        key = _key(self.aes_key)
        msg = plaintext.encode("utf-8")
        data = (random16 or os.urandom(16)) + struct.pack(">I", len(msg)) + msg + self.owner_key.encode()
        pad = BLOCK - len(data) % BLOCK
        data += bytes([pad]) * pad
        return base64.b64encode(AES.new(key, AES.MODE_CBC, key[:16]).encrypt(data)).decode()
