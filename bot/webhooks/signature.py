"""The signature of a work_order_change webhook (docs/webhooks.md has a worked example).

Headers of every POST::

    X-Ticketbot-Timestamp: <epoch seconds when this attempt was signed>
    X-Ticketbot-Signature: sha256=<hex HMAC-SHA256(webhook_secret, timestamp + "." + raw body)>
    X-Ticketbot-Webhook-Id: <the envelope's id, the same on every retry>

The MAC covers the exact bytes of the body (UTF-8 JSON) after the ASCII timestamp and a ".". A
receiver recomputes it over the raw body it read (before parsing), compares in constant time and
refuses a timestamp more than `TOLERANCE` seconds away from its clock (a captured POST cannot be
replayed later); `verify` does all three.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Ticketbot-Timestamp"
SIGNATURE_HEADER = "X-Ticketbot-Signature"
ID_HEADER = "X-Ticketbot-Webhook-Id"
EVENT_HEADER = "X-Ticketbot-Event"
SCHEME = "sha256="
TOLERANCE = 300  # seconds a receiver should accept between the timestamp and its clock


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Ticketbot-Signature value: ``sha256=`` + hex HMAC-SHA256(secret, timestamp + "." + body)."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return SCHEME + mac.hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, given: str, now: float, tolerance: int = TOLERANCE
) -> bool:
    """Whether `given` (the X-Ticketbot-Signature header) signs `body` at `timestamp` (the
    X-Ticketbot-Timestamp header) with `secret`, and the timestamp is within `tolerance` seconds of
    `now` (epoch seconds). Constant-time comparison; never raises on bad input."""
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return False
    if abs(now - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body).encode(), given.encode("utf-8", "replace"))
