"""The platforms' official callback crypto vectors (copied from shared/vectors), and the refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.dingtalk.crypto import CallbackRefused as DingRefused
from bot.dingtalk.crypto import DingTalkCrypto
from bot.wecom.crypto import CallbackRefused as WeComRefused
from bot.wecom.crypto import WeComCrypto

HERE = Path(__file__).parent / "vectors"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "vectors"


def vectors(name: str) -> list[dict[str, Any]]:
    return list(json.loads((HERE / name).read_text(encoding="utf-8"))["vectors"])


@pytest.mark.parametrize("name", ["wecom.json", "dingtalk.json"])
def test_the_copied_vectors_are_the_shared_ones(name: str) -> None:
    if (SHARED / name).exists():  # beside a checkout (CI); a lone clone has only the copy
        assert (HERE / name).read_bytes() == (SHARED / name).read_bytes()


@pytest.mark.parametrize("v", vectors("wecom.json"), ids=lambda v: v["label"])
def test_wecom_official_vectors(v: dict[str, Any]) -> None:
    crypto = WeComCrypto(v["token"], v["encoding_aes_key"], v["receive_id"])
    got = crypto.verify_and_decrypt(v["msg_signature"], v["timestamp"], v["nonce"], v["encrypt"])
    assert got == v["expected_plaintext"]


@pytest.mark.parametrize("v", vectors("dingtalk.json"), ids=lambda v: v["label"])
def test_dingtalk_official_vectors(v: dict[str, Any]) -> None:
    crypto = DingTalkCrypto(v["token"], v["encoding_aes_key"], v["owner_key"])
    got = crypto.verify_and_decrypt(v["signature"], v["timestamp"], v["nonce"], v["encrypt"])
    assert got == v["expected_plaintext"]


def test_wecom_round_trip_and_refusals() -> None:
    v = vectors("wecom.json")[1]
    crypto = WeComCrypto(v["token"], v["encoding_aes_key"], v["receive_id"])
    encrypt, sig = crypto.encrypt("<xml>你好</xml>", "n1", "1700000000")
    assert crypto.verify_and_decrypt(sig, "1700000000", "n1", encrypt) == "<xml>你好</xml>"
    with pytest.raises(WeComRefused) as bad_sig:
        crypto.verify_and_decrypt("0" * 40, v["timestamp"], v["nonce"], v["encrypt"])
    assert bad_sig.value.status == 403
    other = WeComCrypto(v["token"], v["encoding_aes_key"], "another-corp")
    with pytest.raises(WeComRefused) as bad_corp:
        other.verify_and_decrypt(v["msg_signature"], v["timestamp"], v["nonce"], v["encrypt"])
    assert bad_corp.value.status == 403
    for junk in ("not base64!", "", "QUJD", "A" * 44):
        with pytest.raises(WeComRefused) as bad:
            crypto.decrypt(junk)
        assert bad.value.status == 400
    assert "QDG6eK" not in repr(crypto) and v["encoding_aes_key"] not in repr(crypto)


def test_dingtalk_round_trip_and_refusals() -> None:
    v = vectors("dingtalk.json")[0]
    crypto = DingTalkCrypto(v["token"], v["encoding_aes_key"], v["owner_key"])
    encrypt = crypto.encrypt('{"EventType":"check_url","名":"值"}')
    assert crypto.decrypt(encrypt) == '{"EventType":"check_url","名":"值"}'
    with pytest.raises(DingRefused) as bad_sig:
        crypto.verify_and_decrypt("f" * 40, v["timestamp"], v["nonce"], v["encrypt"])
    assert bad_sig.value.status == 403
    with pytest.raises(DingRefused) as bad_owner:
        DingTalkCrypto(v["token"], v["encoding_aes_key"], "ding-other").decrypt(v["encrypt"])
    assert bad_owner.value.status == 403
    for junk in ("%%%", "", "QUJD", "A" * 44, "A" * 64):
        with pytest.raises(DingRefused) as bad:
            crypto.decrypt(junk)
        assert bad.value.status == 400


@pytest.mark.parametrize("key", ["short", "=" * 43, "a" * 42])
def test_a_malformed_aes_key_is_refused_at_configuration(key: str) -> None:
    with pytest.raises(ValueError, match="43-character"):
        WeComCrypto("t", key, "corp")
    with pytest.raises(ValueError, match="43-character"):
        DingTalkCrypto("t", key, "owner")
