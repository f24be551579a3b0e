"""The local broker's KRaft cluster ids are ones ``kafka-storage format -t ID`` accepts."""

from __future__ import annotations

import base64
import uuid

import pytest

from stream_ids import broker


def test_cluster_ids_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    dash_first = uuid.UUID(bytes=b"\xfb" + bytes(15))  # base64 of 0xfb... starts with "-"
    assert base64.urlsafe_b64encode(dash_first.bytes).decode().startswith("-")
    drawn = iter([dash_first, dash_first, uuid.UUID(int=12345)])
    monkeypatch.setattr(broker.uuid, "uuid4", lambda: next(drawn))
    value = broker.cluster_id()
    assert not value.startswith("-") and len(value) == 22
    assert base64.urlsafe_b64decode(value + "==") == uuid.UUID(int=12345).bytes


def test_cluster_ids_are_22_url_safe_characters() -> None:
    for _ in range(500):
        value = broker.cluster_id()
        assert len(value) == 22 and not value.startswith("-")
        assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
