"""What a placeholder secret looks like, and the demo's fixed values.

The demo (`ticketbot demo`) runs both platforms on the emulator with fixed, published values; they
are kept here so that `serve` can recognise them (config/secret_check.py) and the demo can use them
(bot/demo.py). None of them is a secret: anyone can read them in this repository.
"""

from __future__ import annotations

import re

_PLACEHOLDER_RE = re.compile(
    r"change[-_ .]?me|replace[-_ .]?me|placeholder|your[-_ .]?secret|\Ademo|x{6,}|\A<.*>\Z",
    re.IGNORECASE,
)

DEMO_WECOM_CORP_ID = "ww-demo-corp"
DEMO_WECOM_SECRET = "demo-wecom-secret"  # noqa: S105 - a fixed demo value shared with the emulator
DEMO_WECOM_TOKEN = "demo-wecom-token"  # noqa: S105
DEMO_WECOM_AES_KEY = "ZGVtby13ZWNvbS1hZXMta2V5LWZvci10aWNrZXRib3Q"  # 43 characters, as WeCom's
DEMO_DINGTALK_APP_KEY = "ding-demo-app-key"
DEMO_DINGTALK_APP_SECRET = "demo-dingtalk-app-secret"  # noqa: S105
DEMO_LINK_SECRET = "demo-ticket-page-links"  # noqa: S105
DEMO_API_TOKEN = "demo-token"  # noqa: S105 - the shipped apps.yaml's demo app
DEMO_VALUES = frozenset(
    (
        DEMO_WECOM_SECRET,
        DEMO_WECOM_TOKEN,
        DEMO_WECOM_AES_KEY,
        DEMO_DINGTALK_APP_SECRET,
        DEMO_LINK_SECRET,
        DEMO_API_TOKEN,
    )
)


def looks_like_placeholder(value: str) -> bool:
    """ "change-me", "replace_me", "placeholder", "your-secret", "demo...", "xxxxxx", "<secret>", or
    one of the demo's published values."""
    return value in DEMO_VALUES or _PLACEHOLDER_RE.search(value) is not None
