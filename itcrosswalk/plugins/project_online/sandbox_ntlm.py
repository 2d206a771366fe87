"""The server side of NTLMv2 for the emulated Project Web App, written from the protocol's
specification ([MS-NLMP] sections 2.2.1 and 3.3.2) with the standard library only: it answers a
NEGOTIATE message with a CHALLENGE carrying the server's target information, and checks the
NTProofStr of an AUTHENTICATE message against the user's password. NTLMv1 answers and unknown
users are refused, as a server with ``LmCompatibilityLevel`` 5 does.

MD4 (RFC 1320), which the NT one-way function needs and OpenSSL 3 no longer offers, is here too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import struct
import threading
import time

SIGNATURE = b"NTLMSSP\x00"
NEGOTIATE, CHALLENGE, AUTHENTICATE = 1, 2, 3

# NegotiateFlags ([MS-NLMP] 2.2.2.5)
UNICODE = 0x00000001
OEM = 0x00000002
REQUEST_TARGET = 0x00000004
NTLM = 0x00000200
ALWAYS_SIGN = 0x00008000
TARGET_TYPE_DOMAIN = 0x00010000
EXTENDED_SESSION_SECURITY = 0x00080000
TARGET_INFO = 0x00800000
VERSION = 0x02000000
LM_KEY = 0x00000080

# AV_PAIR ids ([MS-NLMP] 2.2.2.1)
AV_EOL, AV_NB_COMPUTER, AV_NB_DOMAIN, AV_DNS_COMPUTER, AV_DNS_DOMAIN, AV_TIMESTAMP = (
    0,
    1,
    2,
    3,
    4,
    7,
)

FILETIME_EPOCH = 116444736000000000
"""100-nanosecond intervals between 1601-01-01 and 1970-01-01."""


def md4(data: bytes) -> bytes:
    """The MD4 digest of ``data`` (RFC 1320)."""

    def rotl(x: int, n: int) -> int:
        x &= 0xFFFFFFFF
        return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF

    length = len(data) * 8
    data += b"\x80" + b"\x00" * ((55 - len(data)) % 64) + struct.pack("<Q", length)
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
    rounds = (
        (lambda x, y, z: (x & y) | (~x & z), 0, (3, 7, 11, 19), range(16)),
        (lambda x, y, z: (x & y) | (x & z) | (y & z), 0x5A827999, (3, 5, 9, 13), (0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)),
        (lambda x, y, z: x ^ y ^ z, 0x6ED9EBA1, (3, 9, 11, 15), (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)),
    )  # fmt: skip
    for offset in range(0, len(data), 64):
        x = struct.unpack("<16I", data[offset : offset + 64])
        a, b, c, d = h
        for f, k, shifts, order in rounds:
            for i, j in enumerate(order):
                a = rotl(a + f(b, c, d) + x[j] + k, shifts[i % 4])
                a, b, c, d = d, a, b, c
        h = [(v + w) & 0xFFFFFFFF for v, w in zip(h, (a, b, c, d), strict=True)]
    return struct.pack("<4I", *h)


def nt_owf_v2(password: str, user: str, domain: str) -> bytes:
    """NTOWFv2: HMAC-MD5 keyed with MD4(UTF-16LE(password)) over UTF-16LE(UPPER(user) + domain)."""
    nt_hash = md4(password.encode("utf-16-le"))
    return hmac.new(nt_hash, (user.upper() + domain).encode("utf-16-le"), hashlib.md5).digest()


def _field(message: bytes, offset: int) -> bytes:
    """The payload a (length, max length, offset) field at ``offset`` points at."""
    length, _max, start = struct.unpack_from("<HHI", message, offset)
    return message[start : start + length]


def _av_pairs(pairs: list[tuple[int, bytes]]) -> bytes:
    out = b"".join(struct.pack("<HH", av, len(value)) + value for av, value in pairs)
    return out + struct.pack("<HH", AV_EOL, 0)


class NtlmAcceptor:
    """The server side of NTLMv2 for the users the emulator knows.

    Args:
        users: ``[DOMAIN\\]name`` -> password; names match case-insensitively, any domain.
    """

    domain = "CITY"
    computer = "PWA"
    dns_computer = "pwa.city.example.gov"

    def __init__(self, users: dict[str, str]) -> None:
        self.users = {name.split("\\")[-1].lower(): secret for name, secret in users.items()}
        self.challenges: dict[str, tuple[bytes, float]] = {}
        self.lock = threading.Lock()

    def challenge(self, token: bytes) -> tuple[str, str]:
        """A CHALLENGE for a NEGOTIATE; returns (header value, cookie key of this challenge)."""
        if token[:8] != SIGNATURE or struct.unpack_from("<I", token, 8)[0] != NEGOTIATE:
            raise ValueError("not an NTLM NEGOTIATE message")
        asked = struct.unpack_from("<I", token, 12)[0]
        flags = asked | REQUEST_TARGET | NTLM | ALWAYS_SIGN | TARGET_INFO | TARGET_TYPE_DOMAIN
        flags &= ~VERSION  # no Version field is sent
        if flags & UNICODE:
            flags &= ~OEM
        if flags & EXTENDED_SESSION_SECURITY:
            flags &= ~LM_KEY
        encoding = "utf-16-le" if flags & UNICODE else "ascii"
        server_challenge = os.urandom(8)
        stamp = int(time.time() * 10_000_000) + FILETIME_EPOCH
        info = _av_pairs(
            [
                (AV_NB_DOMAIN, self.domain.encode("utf-16-le")),
                (AV_NB_COMPUTER, self.computer.encode("utf-16-le")),
                (AV_DNS_DOMAIN, "city.example.gov".encode("utf-16-le")),
                (AV_DNS_COMPUTER, self.dns_computer.encode("utf-16-le")),
                (AV_TIMESTAMP, struct.pack("<Q", stamp)),
            ]
        )
        target = self.domain.encode(encoding)
        header = 48  # signature, type, target name, flags, challenge, reserved, target info
        message = (
            SIGNATURE
            + struct.pack("<I", CHALLENGE)
            + struct.pack("<HHI", len(target), len(target), header)
            + struct.pack("<I", flags)
            + server_challenge
            + b"\x00" * 8
            + struct.pack("<HHI", len(info), len(info), header + len(target))
            + target
            + info
        )
        key = secrets.token_hex(8)
        with self.lock:
            now = time.monotonic()
            self.challenges = {k: v for k, v in self.challenges.items() if now - v[1] < 120}
            self.challenges[key] = (server_challenge, now)
        return "NTLM " + base64.b64encode(message).decode(), key

    def authenticate(self, token: bytes, key: str | None) -> str | None:
        """The user an AUTHENTICATE message proves, or None."""
        try:
            if token[:8] != SIGNATURE or struct.unpack_from("<I", token, 8)[0] != AUTHENTICATE:
                return None
            flags = struct.unpack_from("<I", token, 60)[0]
            encoding = "utf-16-le" if flags & UNICODE else "ascii"
            response = _field(token, 20)
            domain = _field(token, 28).decode(encoding)
            user = _field(token, 36).decode(encoding)
        except (struct.error, UnicodeDecodeError):
            return None
        password = self.users.get(user.lower())
        if password is None or len(response) <= 24:
            return None  # unknown user, or NTLMv1, which the emulated server refuses
        with self.lock:
            candidates = (
                [self.challenges[key][0]]
                if key in self.challenges
                else [c for c, _t in self.challenges.values()]
            )
        response_key = nt_owf_v2(password, user, domain)
        proof, blob = response[:16], response[16:]
        for server_challenge in candidates:
            expected = hmac.new(response_key, server_challenge + blob, hashlib.md5).digest()
            if hmac.compare_digest(expected, proof):
                with self.lock:
                    self.challenges.pop(key or "", None)
                return user.lower()
        return None
