"""The streaming split of the shipped CNN-LSTM (per-flow encoder + sequence head) equals the
whole model on real windows, padding included, and the per-host encoding state round-trips."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from stream_ids.datasets import improved_csvs
from stream_ids.loader import load_flows
from stream_ids.sequences import DEFAULT_HOST_TTL_S, make_windows
from stream_ids.tables import HostHistory, build_batch_windows, decode_history, encode_history


@pytest.fixture(scope="module")
def scorer():
    from stream_ids.scorer import Scorer

    loaded = Scorer.load()
    assert loaded.enable_split()
    return loaded


@pytest.fixture(scope="module")
def real():
    frame = load_flows(improved_csvs())
    # whole hosts' sequences, some of them short (front padding), in time order
    return frame.sort_values("timestamp", kind="stable").head(3000).reset_index(drop=True)


def test_split_equals_whole_model_on_real_windows(scorer, real) -> None:
    transformed = scorer.transform.transform_many(real)
    windows, mask = make_windows(transformed, real["src_ip"], real["timestamp"], scorer.window)
    assert (~mask).any() and mask.all(axis=1).any()  # padded and full windows both present
    whole = scorer.score_windows(windows)
    encodings = scorer.encode(windows.reshape(-1, windows.shape[2])).reshape(
        len(windows), scorer.window, -1
    )
    split = scorer.score_encoded(encodings, mask.sum(axis=1))
    np.testing.assert_allclose(split, whole, atol=1e-5)
    # padded steps' encodings are never read: garbage there changes nothing
    encodings[~mask] = 123.0
    np.testing.assert_allclose(scorer.score_encoded(encodings, mask.sum(axis=1)), whole, atol=1e-5)


def test_streamed_encoding_state_equals_offline_scores(scorer, real) -> None:
    """Batches through the encoding table (bytes round trip) give the offline per-host scores,
    with the host TTL (gaps of flow time end a window) applied alike on both sides."""
    offline = scorer.score_frame(real)  # the default host TTL
    times = real["timestamp"].to_numpy(dtype=np.float64)
    transformed = scorer.transform.transform_many(real)
    keys = [str(host).encode() for host in real["src_ip"]]
    state: dict[bytes, bytes] = {}
    scores = []
    for start in range(0, len(real), 512):
        batch_keys = keys[start : start + 512]
        histories = {
            key: decode_history(state[key], scorer.state_width, scorer.state_tag)
            for key in set(batch_keys)
            if key in state
        }
        encodings = scorer.encode(transformed[start : start + 512])
        windows, lengths, updated, _ = build_batch_windows(
            encodings,
            batch_keys,
            histories,
            scorer.window,
            times=times[start : start + 512],
            ttl=DEFAULT_HOST_TTL_S,
        )
        scores.append(scorer.score_encoded(windows, lengths))
        state.update(
            {key: encode_history(value, scorer.state_tag) for key, value in updated.items()}
        )
    np.testing.assert_allclose(np.concatenate(scores), offline, atol=1e-5)


def test_state_of_another_model_is_not_reused(scorer) -> None:
    history = HostHistory.of(np.ones((3, scorer.state_width), dtype=np.float32))
    raw = encode_history(history, scorer.state_tag)
    assert np.array_equal(
        decode_history(raw, scorer.state_width, scorer.state_tag).rows, history.rows
    )
    assert len(decode_history(raw, scorer.state_width, b"enc1:0000000000000000:")) == 0
    assert len(decode_history(encode_history(history), scorer.state_width, scorer.state_tag)) == 0


@pytest.mark.parametrize("chunk_flows", [1, 2, 3, 5, 4096])
def test_pipelined_chunks_keep_host_order(chunk_flows: int) -> None:
    """A batch cut into pipelined chunks gives the scores of one offline pass (fake model)."""
    import asyncio

    from streaming_fakes import FakeModel, event, fake_topics, flow, message

    from stream_ids.rolling import RollingStats
    from stream_ids.sequences import make_windows
    from stream_ids.worker.batch import BatchScorer

    topics = fake_topics()
    table: dict[bytes, bytes] = {}
    scorer = BatchScorer(FakeModel(), table, topics, RollingStats("w"))
    scorer.chunk_flows = chunk_flows
    good = [flow(f"g{i}", src_ip=f"10.0.0.{i % 3}", duration=10.0 * (i + 1)) for i in range(17)]
    events = [event(*reversed(message(obj)), offset=i) for i, obj in enumerate(good)]
    asyncio.run(scorer.process(events[:11]))
    asyncio.run(scorer.process(events[11:]))
    verdicts = {v["flow_id"]: v for _, v in topics.verdicts.sent}
    assert len(verdicts) == len(good) == len(topics.verdicts.sent)
    model = FakeModel()
    transformed = model.transform.transform_many(good)
    windows, _ = make_windows(transformed, [g["src_ip"] for g in good], None, model.window)
    expected = model.score_windows(windows)
    assert np.allclose([verdicts[g["flow_id"]]["score"] for g in good], expected, atol=1e-6)


@pytest.mark.parametrize("collected_first", [True, False], ids=["collected-first", "read-first"])
@pytest.mark.parametrize("overlap", [False, True])
def test_queued_chunk_reads_the_state_of_the_chunk_before_it(
    collected_first: bool, overlap: bool
) -> None:
    """A chunk queued behind another in the scoring thread gets that chunk's host states
    whether the event loop collects the earlier chunk before or after the queued one reads.

    Forced orderings: every chunk after the first waits in the scoring thread until the event
    loop has collected the chunk before it (or the loop waits until it has read), so the
    states cannot come from the loop's own bookkeeping alone."""
    import asyncio
    import threading

    from streaming_fakes import FakeModel, event, fake_topics, flow, message

    from stream_ids.rolling import RollingStats
    from stream_ids.sequences import make_windows
    from stream_ids.worker.batch import BatchScorer
    from stream_ids.worker.score import ScoringPipeline

    class Ordered(ScoringPipeline):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.collected: dict[int, threading.Event] = {}
            self.read: dict[int, threading.Event] = {}

        def gate(self, table: dict[int, threading.Event], sequence: int) -> threading.Event:
            return table.setdefault(sequence, threading.Event())

        def compute_queued(self, *args: Any) -> Any:
            sequence = args[3]
            if collected_first and sequence > 1:
                assert self.gate(self.collected, sequence - 1).wait(10)
            try:
                return super().compute_queued(*args)
            finally:
                self.gate(self.read, sequence).set()

        async def collect(self, running: Any) -> Any:
            if not collected_first:  # the chunk queued behind has read before this is collected
                later = self.gate(self.read, running.sequence + 1)
                await asyncio.get_running_loop().run_in_executor(None, later.wait, 0.5)
            done = await super().collect(running)
            self.gate(self.collected, running.sequence).set()
            return done

    topics = fake_topics()
    table: dict[bytes, bytes] = {}
    acked: list[object] = []
    scorer = BatchScorer(FakeModel(), table, topics, RollingStats("w"), ack_filled=acked.extend)
    scorer.pipeline = Ordered(scorer.model)
    scorer.chunk_flows = 1  # one event per chunk, each needing the state of the one before
    good = [flow(f"q{i}", src_ip="10.0.0.1", duration=10.0 * (i + 1)) for i in range(12)]
    events = [event(*reversed(message(obj)), offset=i) for i, obj in enumerate(good)]

    async def run() -> None:
        for start in (0, 5, 9):
            await scorer.process(events[start : start + {0: 5, 5: 4, 9: 3}[start]], overlap)
        if scorer.tail_task is not None:
            await scorer.tail_task

    asyncio.run(run())
    verdicts = {v["flow_id"]: v for _, v in topics.verdicts.sent}
    assert len(verdicts) == len(good) == len(topics.verdicts.sent)
    model = FakeModel()
    transformed = model.transform.transform_many(good)
    windows, _ = make_windows(transformed, [g["src_ip"] for g in good], None, model.window)
    # each flow's window: the earlier flows of its host, the one host of every chunk
    lengths = [min(model.window, i + 1) for i in range(len(good))]
    assert [verdicts[g["flow_id"]]["window_length"] for g in good] == lengths
    assert np.allclose(
        [verdicts[g["flow_id"]]["score"] for g in good], model.score_windows(windows), atol=1e-6
    )
