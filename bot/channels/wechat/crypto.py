"""WeChat Official Account signatures and safe-mode (AES) message encryption.

``signature`` = SHA-1 of the sorted join of ``[token, timestamp, nonce]`` (plus ``Encrypt`` for
``msg_signature``). Safe mode: AES-256-CBC with ``key = base64(EncodingAESKey + "=")``,
``IV = key[:16]``, PKCS#7 padding to 32-byte blocks; plaintext = 16 random bytes + 4-byte
big-endian length + message + appid (``../shared/reference/wechat.md``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32


class WeChatCryptoError(ValueError):
    """A message that cannot be decrypted or does not belong to this app."""


def signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8")).hexdigest()


def check_signature(expected: str | None, *parts: str) -> bool:
    if not expected or not expected.isascii():  # a hex digest; compare_digest needs ASCII
        return False
    return hmac.compare_digest(signature(*parts), expected.strip().lower())


def aes_key(encoding_aes_key: str) -> bytes:
    if len(encoding_aes_key) != 43:
        raise WeChatCryptoError("EncodingAESKey must be 43 characters (32 bytes once decoded)")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WeChatCryptoError(f"EncodingAESKey is not base64: {exc}") from None
    if len(key) != 32:
        raise WeChatCryptoError("EncodingAESKey must be 43 characters (32 bytes once decoded)")
    return key


class WeChatCrypto:
    def __init__(self, token: str, encoding_aes_key: str, appid: str) -> None:
        self.token = token
        self.key = aes_key(encoding_aes_key)
        self.appid = appid

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self.key), modes.CBC(self.key[:16]))

    def encrypt(self, message: str, random: bytes | None = None) -> str:
        body = message.encode("utf-8")
        plain = (random or os.urandom(16)) + struct.pack(">I", len(body)) + body
        plain += self.appid.encode("utf-8")
        pad = BLOCK - len(plain) % BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode("ascii")

    def decrypt(self, encrypted: str) -> str:
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise WeChatCryptoError("Encrypt is not base64") from None
        if not data or len(data) % 16:
            raise WeChatCryptoError("Encrypt has a bad length")
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise WeChatCryptoError("bad padding (wrong EncodingAESKey?)")
        plain = plain[:-pad]
        if len(plain) < 20:
            raise WeChatCryptoError("decrypted message is too short")
        (length,) = struct.unpack(">I", plain[16:20])
        body, appid = plain[20 : 20 + length], plain[20 + length :]
        if len(body) != length or appid.decode("utf-8", "replace") != self.appid:
            raise WeChatCryptoError("message is for another app id")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise WeChatCryptoError("decrypted message is not UTF-8") from None

    def msg_signature(self, timestamp: str, nonce: str, encrypted: str) -> str:
        return signature(self.token, timestamp, nonce, encrypted)
