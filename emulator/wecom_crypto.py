"""WeCom callback crypto, written from the protocol (doc 90968), independent of the product's adapter.

Layout of the plaintext block: random(16) + len(msg) as 4-byte big-endian + msg (UTF-8) + receive_id,
PKCS#7-padded to a multiple of 32 bytes, AES-256-CBC with IV = key[:16], then base64.
msg_signature = sha1("".join(sorted([token, timestamp, nonce, encrypt]))), lowercase hex.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from Crypto.Cipher import AES

BLOCK = 32  # WeCom pads to 32-byte blocks, not AES's 16


class CryptoError(ValueError):
    """The input is not a well-formed WeCom ciphertext (or key)."""


def aes_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key behind a 43-character EncodingAESKey."""
    if len(encoding_aes_key) != 43:
        raise CryptoError("EncodingAESKey must be 43 base64 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError):
        raise CryptoError("EncodingAESKey is not base64") from None
    if len(key) != 32:
        raise CryptoError("EncodingAESKey must decode to 32 bytes")
    return key


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """msg_signature: sha1 over the sorted [token, timestamp, nonce, encrypt], lowercase hex."""
    joined = "".join(sorted([token, timestamp, nonce, encrypt]))
    return hashlib.sha1(joined.encode("utf-8")).hexdigest()  # noqa: S324 - the protocol's hash


def signature_ok(msg_signature: str, token: str, timestamp: str, nonce: str, encrypt: str) -> bool:
    """Constant-time check of a msg_signature."""
    expected = signature(token, timestamp, nonce, encrypt)
    return hmac.compare_digest(expected.encode(), msg_signature.strip().lower().encode())


def pkcs7_pad(data: bytes, block: int = BLOCK) -> bytes:
    n = block - len(data) % block
    return data + bytes([n]) * n


def pkcs7_unpad(data: bytes, block: int = BLOCK) -> bytes:
    if not data or len(data) % block:
        raise CryptoError(f"padded data is not a whole number of {block}-byte blocks")
    n = data[-1]
    if not 1 <= n <= block or data[-n:] != bytes([n]) * n:
        raise CryptoError("bad PKCS#7 padding")
    return data[:-n]


class WeComCipher:
    """AES layer of WeCom's callback crypto for one EncodingAESKey."""

    __slots__ = ("_key",)

    def __init__(self, encoding_aes_key: str) -> None:
        self._key = aes_key(encoding_aes_key)

    def __repr__(self) -> str:
        return "WeComCipher(<key hidden>)"

    def encrypt(self, plaintext: str, receive_id: str, *, random_prefix: bytes | None = None) -> str:
        """base64 ciphertext of `plaintext` addressed to `receive_id` (the CorpID for a self-built app)."""
        prefix = os.urandom(16) if random_prefix is None else random_prefix
        if len(prefix) != 16:
            raise CryptoError("the random prefix must be 16 bytes")
        msg = plaintext.encode("utf-8")
        raw = prefix + struct.pack(">I", len(msg)) + msg + receive_id.encode("utf-8")
        cipher = AES.new(self._key, AES.MODE_CBC, self._key[:16])
        return base64.b64encode(cipher.encrypt(pkcs7_pad(raw))).decode("ascii")

    def decrypt_raw(self, encrypt: str) -> tuple[bytes, str, str]:
        """(random prefix, plaintext, receive_id) inside a base64 ciphertext."""
        try:
            data = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise CryptoError("ciphertext is not base64") from None
        if not data or len(data) % 16:
            raise CryptoError("ciphertext is not a whole number of AES blocks")
        cipher = AES.new(self._key, AES.MODE_CBC, self._key[:16])
        raw = pkcs7_unpad(cipher.decrypt(data))
        if len(raw) < 20:
            raise CryptoError("plaintext block is too short")
        (length,) = struct.unpack(">I", raw[16:20])
        if 20 + length > len(raw):
            raise CryptoError("message length runs past the plaintext")
        try:
            msg = raw[20 : 20 + length].decode("utf-8")
            receive_id = raw[20 + length :].decode("utf-8")
        except UnicodeDecodeError:
            raise CryptoError("plaintext is not UTF-8") from None
        return raw[:16], msg, receive_id

    def decrypt(self, encrypt: str) -> tuple[str, str]:
        """(plaintext, receive_id) inside a base64 ciphertext."""
        _, msg, receive_id = self.decrypt_raw(encrypt)
        return msg, receive_id
