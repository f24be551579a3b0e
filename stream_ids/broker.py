"""A real, single-node Apache Kafka broker (KRaft mode) for machines without Docker.

The broker's jars come from Maven Central through ``mvn`` (the pom is
``stream_ids/resources/broker/kafka-pom.xml``, package data, so a wheel install starts it too)
into a cache folder; after the first start no network is needed. The broker runs detached, in its
own process session, with its log and pid file in its data folder, so ``stream-ids broker stop``
from another shell finds it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import subprocess  # runs java and mvn with argument lists, never a shell
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stream_ids.errors import BrokerError, ConfigurationError

KAFKA_VERSION = "4.0.0"
_RESOURCES = Path(__file__).resolve().parent / "resources" / "broker"
POM_PATH = _RESOURCES / "kafka-pom.xml"
LOG4J_CONFIG_PATH = _RESOURCES / "log4j2.properties"
_COMPLETE_MARKER = ".complete"


def _user_dir(variable: str, fallback: Path) -> Path:
    configured = os.environ.get(variable)
    return Path(configured) if configured else fallback


def default_cache_dir() -> Path:
    """Where resolved broker jars are kept: ``$STREAM_IDS_CACHE_DIR`` or ``~/.cache/stream-ids``."""
    return _user_dir("STREAM_IDS_CACHE_DIR", Path.home() / ".cache" / "stream-ids")


def default_data_dir(port: int) -> Path:
    """A broker's state folder, one per port, so start/stop/status agree without a flag."""
    state = _user_dir("STREAM_IDS_STATE_DIR", Path.home() / ".local" / "state" / "stream-ids")
    return state / f"broker-{port}"


def _require_tool(name: str, package_hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ConfigurationError(
            f"`{name}` is not on PATH; the local Kafka broker needs it. Install {package_hint} "
            "(Debian/Ubuntu: `apt-get install openjdk-17-jre-headless maven`)."
        )
    return path


def _require_java17() -> str:
    """The ``java`` executable; ``ConfigurationError`` when it is missing or older than 17."""
    java = _require_tool("java", "a Java 17+ runtime")
    result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [java, "-XshowSettings:properties", "-version"],
        capture_output=True,
        text=True,
        check=False,
    )
    for line in (result.stdout + result.stderr).splitlines():
        if "java.specification.version" in line:
            version = line.split("=", 1)[1].strip()
            major = int(version.split(".")[-1] if version.startswith("1.") else version)
            if major < 17:
                raise ConfigurationError(
                    f"Kafka 4 needs Java 17 or newer, `{java}` is Java {version} "
                    "(Debian/Ubuntu: `apt-get install openjdk-17-jre-headless`)."
                )
    return java


def cluster_id() -> str:
    """A KRaft cluster id: a random UUID as 22 URL-safe base64 characters (as `random-uuid`).

    Never one that starts with ``-``: ``kafka-storage format -t -x...`` reads it as an option
    and fails (1 id in 64; Kafka's own ``Uuid.randomUuid`` draws again for the same reason).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not text.startswith("-"):
            return text


def metadata_reachable(bootstrap: str, timeout_s: float = 2.0, **client_config: str) -> bool:
    """True when a metadata request through confluent-kafka succeeds within ``timeout_s``."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, **client_config})
    try:
        admin.list_topics(timeout=timeout_s)
    except Exception:
        return False
    return True


def ssl_listener_properties(
    keystore_pem: str | os.PathLike[str],
    truststore_pem: str | os.PathLike[str],
    listener: str = "SSL",
    client_auth: str = "required",
) -> dict[str, str]:
    """Broker properties of a TLS listener from PEM files (Kafka 2.7+ PEM stores, no JKS).

    ``keystore_pem`` holds the broker's unencrypted PKCS#8 private key followed by its
    certificate chain; ``truststore_pem`` the CA certificate(s) that sign client certificates.
    ``client_auth``: ``required`` (mutual TLS), ``requested`` or ``none``.
    """
    prefix = f"listener.name.{listener.lower()}."
    return {
        f"{prefix}ssl.keystore.type": "PEM",
        f"{prefix}ssl.keystore.location": str(Path(keystore_pem).resolve()),
        f"{prefix}ssl.truststore.type": "PEM",
        f"{prefix}ssl.truststore.location": str(Path(truststore_pem).resolve()),
        f"{prefix}ssl.client.auth": client_auth,
        f"{prefix}ssl.endpoint.identification.algorithm": "https",
    }


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    data_dir: Path
    log_file: Path


@dataclass
class LocalBroker:
    """One KRaft broker+controller on 127.0.0.1.

    ``port`` is the client port; the controller listens on ``port + 1``.
    """

    port: int = 9092
    data_dir: Path | None = None
    cache_dir: Path | None = None
    kafka_version: str = KAFKA_VERSION
    heap: str = "512m"
    # Extra listeners / properties (the TLS listener of the security tests uses this).
    extra_listeners: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    extra_properties: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir) if self.data_dir else default_data_dir(self.port)
        self.cache_dir = Path(self.cache_dir) if self.cache_dir else default_cache_dir()

    # -- paths ---------------------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return Path(self.data_dir or default_data_dir(self.port))

    @property
    def libs_dir(self) -> Path:
        """``<cache>/kafka-<version>/libs-<pom hash>``: a changed pom resolves into a new folder
        instead of swapping jars under a running broker."""
        digest = hashlib.sha256(POM_PATH.read_bytes() if POM_PATH.exists() else b"")
        digest.update(self.kafka_version.encode())
        return (
            Path(self.cache_dir or default_cache_dir())
            / f"kafka-{self.kafka_version}"
            / f"libs-{digest.hexdigest()[:10]}"
        )

    @property
    def log_file(self) -> Path:
        return self.state_dir / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "broker.pid"

    @property
    def properties_file(self) -> Path:
        return self.state_dir / "server.properties"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def controller_port(self) -> int:
        return self.port + 1

    # -- classpath -----------------------------------------------------------------------
    def resolve_classpath(self) -> Path:
        """Download the broker's runtime jars once; later calls reuse the cache offline."""
        libs = self.libs_dir
        if (libs / _COMPLETE_MARKER).exists() and any(
            libs.glob(f"kafka_2.13-{self.kafka_version}.jar")
        ):
            return libs
        mvn = _require_tool("mvn", "Apache Maven")
        if not POM_PATH.exists():
            raise ConfigurationError(
                f"broker pom {POM_PATH} not found (package data missing: reinstall stream-ids)"
            )
        libs.mkdir(parents=True, exist_ok=True)
        command = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM_PATH),
            f"-Dkafka.version={self.kafka_version}",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ]
        # Offline first: a warm ~/.m2 makes a restart need no network at all.
        for attempt in (["-o"], []):
            result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
                [command[0], *attempt, *command[1:]], capture_output=True, text=True, check=False
            )
            if result.returncode == 0 and any(libs.glob(f"kafka_2.13-{self.kafka_version}.jar")):
                (libs / _COMPLETE_MARKER).write_text(self.kafka_version)
                return libs
        raise BrokerError(
            f"mvn could not resolve org.apache.kafka:kafka_2.13:{self.kafka_version}:\n"
            + (result.stdout + result.stderr)[-2000:]
        )

    # -- configuration -------------------------------------------------------------------
    def server_properties(self) -> dict[str, str]:
        listeners = {
            "PLAINTEXT": ("127.0.0.1", self.port),
            "CONTROLLER": ("127.0.0.1", self.controller_port),
            **self.extra_listeners,
        }
        protocol_map = {
            name: name
            if name in {"PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT"}
            else "PLAINTEXT"
            for name in listeners
        }
        advertised = {name: address for name, address in listeners.items() if name != "CONTROLLER"}
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": ",".join(f"{n}://{h}:{p}" for n, (h, p) in listeners.items()),
            "advertised.listeners": ",".join(f"{n}://{h}:{p}" for n, (h, p) in advertised.items()),
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": ",".join(f"{n}:{p}" for n, p in protocol_map.items()),
            "log.dirs": str(self.state_dir / "kraft-logs"),
            "num.partitions": "8",
            "auto.create.topics.enable": "true",
            # One node: every internal topic must have replication factor 1, or consumer
            # groups and transactions hang waiting for replicas that never come.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "8",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "24",
            "log.segment.bytes": str(256 * 1024 * 1024),
        }
        properties.update(self.extra_properties)
        return properties

    def _write_properties(self) -> None:
        text = "".join(f"{key}={value}\n" for key, value in self.server_properties().items())
        self.properties_file.write_text(text)

    def _java_command(self, main_class: str, *arguments: str) -> list[str]:
        java = _require_tool("java", "a Java 17+ runtime")
        if not LOG4J_CONFIG_PATH.exists():
            raise ConfigurationError(
                f"broker logging configuration {LOG4J_CONFIG_PATH} not found "
                "(package data missing: reinstall stream-ids)"
            )
        return [
            java,
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG_PATH}",
            "-cp",
            f"{self.libs_dir}/*",
            main_class,
            *arguments,
        ]

    def _format_storage(self) -> None:
        if (self.state_dir / "kraft-logs" / "meta.properties").exists():
            return
        command = self._java_command(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id(),
            "-c",
            str(self.properties_file),
            "--ignore-formatted",
        )
        result = subprocess.run(  # noqa: S603 - fixed argument list, no shell
            command, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise BrokerError(
                f"formatting KRaft storage failed:\n{(result.stdout + result.stderr)[-2000:]}"
            )

    # -- lifecycle -----------------------------------------------------------------------
    def _read_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        # A reused pid belonging to another program is not our broker.
        if b"kafka.Kafka" not in cmdline or str(self.properties_file).encode() not in cmdline:
            return None
        return pid

    def status(self) -> BrokerStatus:
        pid = self._read_pid()
        return BrokerStatus(
            running=pid is not None,
            pid=pid,
            bootstrap=self.bootstrap,
            data_dir=self.state_dir,
            log_file=self.log_file,
        )

    def start(self, timeout_s: float = 90.0) -> bool:
        """Start the broker and wait until it answers metadata requests.

        Returns False when it was already running (which is not an error).
        """
        if self._read_pid() is not None:
            if not metadata_reachable(self.bootstrap, timeout_s=timeout_s):
                raise BrokerError(
                    f"broker process runs but {self.bootstrap} does not answer; see {self.log_file}"
                )
            return False
        if metadata_reachable(self.bootstrap, timeout_s=1.0):
            raise BrokerError(
                f"another Kafka broker already answers on {self.bootstrap}; choose another --port"
            )
        _require_java17()
        self.resolve_classpath()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._write_properties()
        self._format_storage()
        command = self._java_command("kafka.Kafka", str(self.properties_file))
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - fixed argument list, no shell
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.state_dir,
                start_new_session=True,
            )
        self.pid_file.write_text(f"{process.pid}\n")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(
                    f"the broker exited with code {process.returncode}; "
                    f"log {self.log_file}:\n{self.log_tail()}"
                )
            if metadata_reachable(self.bootstrap, timeout_s=1.0):
                return True
            time.sleep(0.5)
        self.stop()
        raise BrokerError(f"the broker did not answer within {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout_s``). False if none ran."""
        pid = self._read_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def _alive(pid: int) -> bool:
    try:
        # Reap it if it is our child; otherwise just probe.
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie that is not our child still answers kill(0); /proc says it is gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"
