"""The worker caps the model's thread pools (Settings.model_threads) unless told otherwise."""

from __future__ import annotations

import pytest

from stream_ids.scorer import limit_model_threads
from stream_ids.settings import Settings

NAMES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "XLA_FLAGS")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_default_is_one_thread_for_tensorflow_and_jax(clean_env) -> None:
    import os

    limit_model_threads(Settings().model_threads)
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == "1"
    assert os.environ["TF_NUM_INTEROP_THREADS"] == "1"
    assert "--xla_cpu_multi_thread_eigen=false" in os.environ["XLA_FLAGS"]


def test_values_set_by_hand_win(clean_env) -> None:
    import os

    clean_env.setenv("TF_NUM_INTRAOP_THREADS", "4")
    limit_model_threads(2)
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == "4"
    assert os.environ["TF_NUM_INTEROP_THREADS"] == "2"
    assert "XLA_FLAGS" not in os.environ


def test_zero_leaves_the_backend_default(clean_env) -> None:
    import os

    clean_env.setenv("STREAM_IDS_MODEL_THREADS", "0")
    limit_model_threads(Settings().model_threads)
    assert not any(name in os.environ for name in NAMES)
