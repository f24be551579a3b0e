"""The CNN-LSTM: a per-flow Conv1D encoder applied to every flow of a host window, then an LSTM.

Pure Keras 3 layers (no ``tf.*`` ops, no ``Lambda``), so the saved ``.keras`` file loads under the
TensorFlow, JAX and PyTorch backends with ``keras.saving.load_model(path, safe_mode=True)``.

Shape: input ``(T, F)`` windows (see :mod:`stream_ids.sequences`); all-zero rows are padding and
are masked (``Masking(0.0)``; ``TimeDistributed`` passes the mask on to the LSTM, which skips
padded steps). The per-flow encoder is the named sub-model ``flow_encoder`` (``(F,) -> (E,)``) so
a worker can cache each flow's encoding per host and run only the LSTM head per new flow.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from stream_ids.quiet import ignore_mask_warning

ENCODER_NAME = "flow_encoder"

ignore_mask_warning()  # the per-flow encoder's Reshape drops the padding mask by design


def make_flow_encoder(
    n_features: int, filters: Sequence[int] = (32, 64), kernel_size: int = 3, dense_units: int = 64
) -> keras.Model:
    """(F,) -> (dense_units,): the flow's features as a 1-D signal through Conv1D/MaxPool blocks."""
    inputs = keras.Input(shape=(n_features,), name="flow")
    x = layers.Reshape((n_features, 1), name="as_signal")(inputs)
    for index, width in enumerate(filters):
        x = layers.Conv1D(
            width, kernel_size, padding="same", activation="relu", name=f"conv{index}"
        )(x)
        x = layers.MaxPooling1D(2, padding="same", name=f"pool{index}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="embed")(x)
    return keras.Model(inputs, x, name=ENCODER_NAME)


def make_model(
    input_shape: tuple[int, int],
    filters: Sequence[int] | int = (32, 64),
    kernel_size: int = 3,
    lstm_units: int = 64,
    dropout: float = 0.3,
    learning_rate: float = 1e-3,
    dense_units: int = 64,
) -> keras.Model:
    """Compiled CNN-LSTM for ``(T, F)`` windows; sigmoid output = attack probability."""
    window, n_features = input_shape
    if isinstance(filters, int):
        filters = (filters, filters * 2)
    encoder = make_flow_encoder(n_features, filters, kernel_size, dense_units)
    inputs = keras.Input(shape=(window, n_features), name="window")
    x = layers.Masking(mask_value=0.0, name="padding_mask")(inputs)
    x = layers.TimeDistributed(encoder, name="per_flow")(x)
    x = layers.LSTM(lstm_units, name="lstm")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(32, activation="relu", name="head")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="attack")(x)
    model = keras.Model(inputs, outputs, name="cnn_lstm")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model

