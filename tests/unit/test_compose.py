"""compose/docker-compose.yml cannot run here (no Docker engine); its structure is checked."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "compose"


def _services() -> dict:
    return yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())["services"]


def test_kafka_runs_single_node_kraft_with_replication_factor_one() -> None:
    kafka = _services()["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    environment = kafka["environment"]
    assert environment["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert environment["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert environment["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert environment["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == 0
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
        "KAFKA_NODE_ID",
    ):
        assert environment[key] == 1, key
    listeners = environment["KAFKA_LISTENERS"]
    for name in environment["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","):
        assert name.split(":")[0] + "://" in listeners


def test_worker_scales_and_reaches_kafka_inside_the_network() -> None:
    worker = _services()["worker"]
    assert "container_name" not in worker  # a fixed name forbids --scale
    assert "ports" not in worker  # fixed host ports collide between replicas
    assert "kafka" in worker["depends_on"]
    assert worker["environment"]["STREAM_IDS_BOOTSTRAP_SERVERS"] == "kafka:9092"
    kafka_environment = _services()["kafka"]["environment"]
    assert "INTERNAL://kafka:9092" in kafka_environment["KAFKA_ADVERTISED_LISTENERS"]
    assert kafka_environment["KAFKA_INTER_BROKER_LISTENER_NAME"] == "INTERNAL"
    assert "build" in worker and worker.get("command", ["stream-ids", "worker"])[-1] == "worker"
    dockerfile = (COMPOSE / worker["build"]["dockerfile"].removeprefix("compose/")).read_text()
    assert "stream-ids" in dockerfile


def test_prometheus_scrapes_the_workers_metrics_port() -> None:
    config = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    text = str(config)
    assert "worker" in text and "9464" in text
