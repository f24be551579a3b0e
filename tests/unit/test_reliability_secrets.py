"""Kafka secrets from the environment never show in repr/str/logs; security reaches every client."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest

from stream_ids.settings import Settings

SECRET = "s3cr3t-Passw0rd-do-not-log"  # noqa: S105 - a test value
KEY_SECRET = "k3y-Passw0rd-do-not-log"  # noqa: S105 - a test value


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("STREAM_IDS_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STREAM_IDS_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("STREAM_IDS_SASL_USERNAME", "ids")
    monkeypatch.setenv("STREAM_IDS_SASL_PASSWORD", SECRET)
    monkeypatch.setenv("STREAM_IDS_SSL_KEY_PASSWORD", KEY_SECRET)
    monkeypatch.setenv("STREAM_IDS_SSL_CAFILE", "/etc/ssl/ca.pem")
    return Settings()


def test_secrets_never_in_repr_str_or_logs(settings: Settings, caplog) -> None:
    texts = [repr(settings), str(settings), f"{settings}", settings.model_dump_json(),
             repr(settings.model_dump()), repr(settings.sasl_password)]
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("stream_ids.test").info("settings %s %r", settings, settings)
        logging.getLogger("stream_ids.test").warning("password %s", settings.sasl_password)
    texts.append(caplog.text)
    for text in texts:
        assert SECRET not in text and KEY_SECRET not in text, text
    assert "**********" in repr(settings)


def test_security_settings_reach_confluent_clients(settings: Settings) -> None:
    from producers.replay import producer_config

    config = producer_config(settings)
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "SCRAM-SHA-512" and config["sasl.username"] == "ids"
    assert config["sasl.password"] == SECRET and config["ssl.ca.location"] == "/etc/ssl/ca.pem"


def test_security_settings_reach_faust(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import faust

    from stream_ids.app import broker_credentials

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", lambda *a, **k: None)
    sasl = broker_credentials(Settings(security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
                                       sasl_username="ids", sasl_password=SECRET,
                                       ssl_cafile=tmp_path / "ca.pem"))
    assert isinstance(sasl, faust.SASLCredentials) and sasl.ssl_context is not None
    assert sasl.username == "ids" and sasl.password == SECRET and sasl.mechanism.value == "PLAIN"
    assert SECRET not in repr(sasl)
    tls = broker_credentials(Settings(security_protocol="SSL", ssl_cafile=tmp_path / "ca.pem"))
    assert isinstance(tls, faust.SSLCredentials)
    assert broker_credentials(Settings()) is None
