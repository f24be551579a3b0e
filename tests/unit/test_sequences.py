"""Per-host windows: front padding, per-host isolation, time order with stable ties."""

from __future__ import annotations

import numpy as np

from stream_ids.sequences import make_windows, window_from_history


def _flows(n: int) -> np.ndarray:
    return (np.arange(n, dtype=np.float32)[:, None] + 1) * np.ones((1, 3), dtype=np.float32)


def test_padding_isolation_and_order() -> None:
    x = _flows(6)  # row i has value i + 1
    hosts = ["a", "b", "a", "a", "b", "a"]
    stamps = [10.0, 1.0, 5.0, 20.0, 2.0, 20.0]  # rows 3 and 5 tie: original order breaks it
    windows, mask = make_windows(x, hosts, stamps, 3)
    assert windows.shape == (6, 3, 3) and mask.shape == (6, 3)
    # host a in time order: row 2 (t5), row 0 (t10), row 3 (t20), row 5 (t20)
    assert windows[2, :, 0].tolist() == [0, 0, 3]
    assert mask[2].tolist() == [False, False, True]
    assert windows[0, :, 0].tolist() == [0, 3, 1]
    assert windows[3, :, 0].tolist() == [3, 1, 4]
    assert windows[5, :, 0].tolist() == [1, 4, 6]
    # host b never sees host a
    assert windows[1, :, 0].tolist() == [0, 0, 2]
    assert windows[4, :, 0].tolist() == [0, 2, 5]
    assert mask.sum(axis=1).tolist() == [2, 1, 1, 3, 2, 3]


def test_window_one_is_per_flow_and_missing_hosts_are_alone() -> None:
    x = _flows(4)
    windows, mask = make_windows(x, ["a", "a", "b", "a"], [1, 2, 3, 4], 1)
    np.testing.assert_array_equal(windows[:, 0], x)
    assert mask.all()
    windows, _ = make_windows(x, [None, None, float("nan"), None], None, 2)
    assert (windows[:, 0] == 0).all()


def test_streaming_history_matches_batch_windows() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((50, 4)).astype(np.float32) + 0.1
    hosts = rng.choice(["a", "b", "c"], 50)
    stamps = np.arange(50, dtype=float)
    windows, _ = make_windows(x, hosts, stamps, 4)
    history: dict[str, list[np.ndarray]] = {}
    for i in range(50):
        seen = history.setdefault(hosts[i], [])
        np.testing.assert_array_equal(window_from_history(seen, x[i], 4), windows[i])
        seen.append(x[i])
        del seen[:-3]
