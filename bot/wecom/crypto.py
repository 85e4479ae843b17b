"""WeCom callback crypto (doc 90968): msg_signature check and AES-256-CBC via wechatpy.

The signature is checked here, in constant time (wechatpy compares with `!=`); wechatpy's
PrpCrypto (pycryptodome backend) does the AES layer. Every failure is a CallbackRefused with the
HTTP status the callback should answer: 403 for a bad signature or receive id, 400 for a payload
that does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass, field

from wechatpy.enterprise.crypto import InvalidCorpIdException, PrpCrypto


class CallbackRefused(Exception):
    """A callback to refuse with HTTP `status`; `reason` is short and safe to answer and log;
    `msg_id` is the platform's message id when it was known at the refusal."""

    def __init__(self, status: int, reason: str, *, msg_id: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.msg_id = msg_id


def aes_key_bytes(encoding_aes_key: str) -> bytes:
    """The 32-byte key behind a 43-character EncodingAESKey; ValueError with a clear message if not."""
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the AES key must be the platform's 43-character base64 EncodingAESKey") from None
    if len(encoding_aes_key) != 43 or len(key) != 32:
        raise ValueError("the AES key must be the platform's 43-character base64 EncodingAESKey")
    return key


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """sha1 over the sorted [token, timestamp, nonce, encrypt], lowercase hex."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()  # noqa: S324


@dataclass(frozen=True, slots=True)
class WeComCrypto:
    token: str = field(repr=False)
    encoding_aes_key: str = field(repr=False)
    receive_id: str  # the CorpID for a self-built app

    def __post_init__(self) -> None:
        aes_key_bytes(self.encoding_aes_key)

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), msg_signature.strip().lower().encode()):
            raise CallbackRefused(403, "msg_signature does not match")

    def decrypt(self, encrypt: str) -> str:
        """The plaintext inside `encrypt` (signature already verified)."""
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise CallbackRefused(400, "Encrypt is not base64") from None
        if not raw or len(raw) % 32:
            raise CallbackRefused(400, "Encrypt is not a whole number of 32-byte AES blocks")
        try:
            text: str = PrpCrypto(aes_key_bytes(self.encoding_aes_key)).decrypt(encrypt, self.receive_id)
        except InvalidCorpIdException:
            raise CallbackRefused(403, "the message is for another receive id (CorpID)") from None
        except (ValueError, struct.error, UnicodeDecodeError, IndexError, TypeError):
            raise CallbackRefused(400, "Encrypt does not decrypt to a WeCom message") from None
        return text

    def verify_and_decrypt(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> str:
        self.verify(msg_signature, timestamp, nonce, encrypt)
        return self.decrypt(encrypt)

    def encrypt(self, plaintext: str, nonce: str, timestamp: str) -> tuple[str, str]:
        """(Encrypt, msg_signature) for a passive reply, or for the emulator's own tests."""
        crypto = PrpCrypto(aes_key_bytes(self.encoding_aes_key))
        encrypted = crypto.encrypt(plaintext, self.receive_id)
        text = encrypted.decode() if isinstance(encrypted, bytes) else str(encrypted)
        return text, signature(self.token, timestamp, nonce, text)
