"""HMAC-SHA256 signatures over raw request bodies, as ePayment platforms send them.

The header reads ``X-Payment-Signature: sha256=<64 hex digits>``: the HMAC-SHA256 of the
exact bytes of the body under the shared key. Verification compares in constant time, so
the time taken tells nothing about how much of a forged signature was right.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final

SIGNATURE_HEADER: Final = "X-Payment-Signature"
_SIGNATURE: Final = re.compile(r"sha256=([0-9a-fA-F]{64})")


def signature_for(shared_secret: bytes, body: bytes) -> str:
    """The header value that signs ``body``."""
    return "sha256=" + hmac.new(shared_secret, body, hashlib.sha256).hexdigest()


def signature_is_valid(shared_secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is a signature of exactly ``body`` under the shared key."""
    if header is None:
        return False
    match = _SIGNATURE.fullmatch(header.strip())
    if match is None:
        return False
    expected = hmac.new(shared_secret, body, hashlib.sha256).digest()
    return hmac.compare_digest(expected, bytes.fromhex(match.group(1)))
