"""The CNN-LSTM intrusion model.

Architecture (:mod:`model.cnn_lstm`), training (:mod:`model.train`),
baselines (:mod:`model.baselines`) and the shipped artifacts under ``model/shipped/``."""

from __future__ import annotations

from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
