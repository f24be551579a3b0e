"""The start-up check of stream_ids.faust_fixes: every Faust internal a fix reads must exist."""

from __future__ import annotations

import pytest
from aiokafka.producer.producer import AIOKafkaProducer
from streaming_fakes import FakeModel

from stream_ids.errors import StreamIdsError
from stream_ids.faust_fixes.checks import INTERNALS, Internal, check_internals
from stream_ids.settings import Settings


def test_the_installed_faust_has_every_internal_the_fixes_read() -> None:
    check_internals()


def test_a_missing_internal_fails_the_worker_build_naming_it_and_the_versions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stream_ids.agents import build_worker

    monkeypatch.delattr(AIOKafkaProducer, "_partition")
    with pytest.raises(StreamIdsError) as raised:
        build_worker(Settings(), FakeModel())
    message = str(raised.value)
    assert "aiokafka.producer.producer.AIOKafkaProducer._partition is missing" in message
    assert "faust-streaming 0.15" in message and "record_batches" in message


def test_an_attribute_set_in_init_counts_and_an_unknown_one_does_not() -> None:
    assert any(internal.attribute == "_acked" for internal in INTERNALS)  # set in __init__
    bogus = Internal("faust.transport.consumer", "Consumer", "_offsets_renamed", "hole_filling")
    with pytest.raises(StreamIdsError, match=r"Consumer\._offsets_renamed is missing"):
        check_internals((*INTERNALS, bogus))
