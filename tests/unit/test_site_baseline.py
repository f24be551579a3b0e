"""docs/site-baseline.md names the sources a model trained on instead of measuring them as sites."""

from __future__ import annotations

from model.site_baseline import render


def test_a_source_the_model_trained_on_is_named_not_measured() -> None:
    site = {
        "site": "pcap/benign", "benign_fit": 112, "benign_tested": 144, "threshold": 0.95,
        "capped": False, "site_recall": None,
        "false_alarms": {"model": 0.097, "threshold": 0.042, "threshold+autoencoder": 0.0},
        "reference_recall": {"threshold": 0.99, "threshold+autoencoder": 0.99},
    }
    report = {"created": "2026-11-30 16:00 UTC", "git": "abc1234", "seconds": 30.0,
              "sites": [site], "in_training": ["cic-ddos2019"]}
    page = render(report)
    assert "| pcap/benign | 112 / 144 |" in page
    assert "Not sites for this model (its training data): cic-ddos2019." in page
    assert "Not sites" not in render({**report, "in_training": []})
