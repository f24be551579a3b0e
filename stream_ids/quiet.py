"""A quiet console: TensorFlow's start-up chatter off unless asked for.

Importing TensorFlow (2.18+) writes, straight to file descriptor 2 and before its logging is
set up (so ``TF_CPP_MIN_LOG_LEVEL`` does not reach them), lines such as
``oneDNN custom operations are on ...``, ``Could not find cuda drivers on your machine`` and
``failed call to cuInit: ... (303)`` on every machine without a GPU. :func:`start_tensorflow`
imports the Keras backend with descriptor 2 sent to a temporary file and writes back every line
that is not one of those known start-up notices, so real errors still show.

A worker's warm-up traces the model for several batch sizes on purpose; :func:`expected_tracing`
drops TensorFlow's "triggered tf.function retracing" warning and the first prediction's
notices during it (the same warning on live traffic still shows).

Verbose mode (``stream-ids --verbose`` or ``STREAM_IDS_LOG_LEVEL=debug``) shows everything.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

LOG_LEVEL_ENV = "STREAM_IDS_LOG_LEVEL"

# Start-up notices of TensorFlow/XLA on CPU-only machines: information, not problems.
STARTUP_NOISE = tuple(
    re.compile(pattern)
    for pattern in (
        r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
        r"oneDNN custom operations are on",
        r"Could not find cuda drivers on your machine",
        r"failed call to cuInit",
        r"Unable to register cu(DNN|FFT|BLAS) factory",
        r"computation placer already registered",
        r"TF-TRT Warning: Could not find TensorRT",
        r"This TensorFlow binary is optimized to use available CPU instructions",
        r"To enable the following instructions: .* rebuild TensorFlow",
        # first prediction on a CPU without AVX-512: a fallback, the result is the same
        r"oneDNN supports DT_BOOL only on platforms with AVX-512",
    )
)
RETRACING_WARNING = "triggered tf.function retracing"


def verbose() -> bool:
    """``STREAM_IDS_LOG_LEVEL=debug`` (what ``stream-ids --verbose`` sets for its children)."""
    return os.environ.get(LOG_LEVEL_ENV, "").strip().lower() == "debug"


def set_verbose() -> None:
    os.environ[LOG_LEVEL_ENV] = "debug"


def is_noise(line: str) -> bool:
    return any(pattern.search(line) for pattern in STARTUP_NOISE)


@contextmanager
def filtered_stderr() -> Iterator[None]:
    """Send descriptor 2 to a file for the block; write back the lines that are not noise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            kept = [line for line in text.splitlines() if line.strip() and not is_noise(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()


def start_tensorflow() -> None:
    """Import Keras and its backend (and list TensorFlow's devices) without the start-up chatter.

    Call before anything else imports Keras; later imports are then free and silent.
    """
    if verbose():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "keras" in sys.modules:
        return
    with filtered_stderr():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # CUDA probing (cuInit) happens here


class _DropRetracingWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return RETRACING_WARNING not in record.getMessage()


@contextmanager
def expected_tracing() -> Iterator[None]:
    """For a block that traces on purpose (warm-up): no retracing warning, no start-up notice."""
    if verbose():
        yield
        return
    tensorflow_log = logging.getLogger("tensorflow")
    drop = _DropRetracingWarning()
    tensorflow_log.addFilter(drop)
    try:
        with filtered_stderr():
            yield
    finally:
        tensorflow_log.removeFilter(drop)


def ignore_mask_warning() -> None:
    """Drop Keras's warning that the CNN-LSTM's ``as_signal`` Reshape destroys the mask.

    TimeDistributed hands the padding mask to the per-flow encoder, whose Reshape drops it by
    design (the encoder is per flow; TimeDistributed applies the mask again to the LSTM's
    input), so the warning, raised when a model is built or loaded, is not news.
    """
    warnings.filterwarnings("ignore", message=r"Layer 'as_signal' .* does not support masking")
