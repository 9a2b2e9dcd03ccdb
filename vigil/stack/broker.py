"""The embedded single-node Apache Kafka broker (KRaft), run from the official jars on Java."""

from __future__ import annotations

import base64
import json
import logging
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

from vigil.errors import BrokerError, RuntimeDependencyError
from vigil.settings import Settings
from vigil.stack import process

log = logging.getLogger(__name__)

_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka.server.KafkaRaftServer
logger.kafka.level = info
"""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_cluster_id() -> str:
    """A KRaft cluster id: base64url of a random UUID that does not start with "-".

    Kafka's own Uuid.randomUuid() makes the same exception: the storage tool's argument
    parser would read a leading "-" as an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def bootstrap_ready(
    bootstrap: str, timeout: float = 5.0, options: dict[str, str] | None = None
) -> bool:
    """True when a broker answers a metadata request over the Kafka protocol, logged in with
    ``options`` (Settings.kafka_options)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaConfigurationError, KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000), **(options or {})
        )
    except KafkaConfigurationError:
        raise  # a bug in vigil, not a broker that is still starting
    except (KafkaError, OSError):
        return False
    try:
        admin.describe_cluster()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def _jaas(value: str | None) -> str:
    """``value`` as the inside of a quoted JAAS option."""
    return (value or "").replace("\\", "\\\\").replace('"', '\\"')


def running_embedded(settings: Settings) -> str | None:
    """The bootstrap address of the embedded broker of ``settings.data_dir``, if it runs."""
    saved = (settings.data_dir / "kafka" / "ports.json").resolve()
    if not saved.exists():
        return None
    bootstrap = f"127.0.0.1:{json.loads(saved.read_text())['broker']}"
    return bootstrap if bootstrap_ready(bootstrap, 3.0, settings.kafka_options) else None


class EmbeddedKafka:
    """One KRaft broker+controller on 127.0.0.1 with its log under ``<data dir>/kafka``."""

    def __init__(self, settings: Settings) -> None:
        self.home = settings.kafka_home
        self.java = settings.java
        self.dir = (settings.data_dir / "kafka").resolve()
        self.requested_port = settings.kafka_port
        self.settings = settings
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.dir / "broker.log"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        """How the broker ended, once it has; None while it runs (or was never started)."""
        return None if self._process is None else self._process.poll()

    def forget(self) -> None:
        """Drop a broker process that has ended (the supervisor starts a new one later)."""
        self._process = None

    def _check_dependencies(self) -> str:
        java = shutil.which(self.java)
        if java is None:
            raise RuntimeDependencyError(
                f"java not found ({self.java!r}); install Java 17 (apt-get install "
                "openjdk-17-jre-headless) or set VIGIL_JAVA, or set VIGIL_KAFKA_BOOTSTRAP to use "
                "an existing Kafka"
            )
        if not any(self.home.glob("kafka_2.13-*.jar")):
            raise RuntimeDependencyError(
                f"Kafka broker jars not found in {self.home}; run `make install` (fetches them "
                "from Maven Central) or set VIGIL_KAFKA_HOME / VIGIL_KAFKA_BOOTSTRAP"
            )
        return java

    def _choose_ports(self) -> tuple[int, int]:
        saved = self.dir / "ports.json"
        if self.requested_port:
            if port_in_use(self.requested_port):
                raise BrokerError(
                    f"port {self.requested_port} on 127.0.0.1 is in use; stop what "
                    "listens there or choose another VIGIL_KAFKA_PORT (0 = any)"
                )
            controller = free_port()
            return self.requested_port, controller
        if saved.exists():  # keep the ports of the last run when they are still free
            ports = json.loads(saved.read_text())
            if not port_in_use(ports["broker"]) and not port_in_use(ports["controller"]):
                return int(ports["broker"]), int(ports["controller"])
        return free_port(), free_port()

    def _listener(self, port: int) -> list[str]:
        """The client listener: PLAINTEXT, or SASL_PLAINTEXT with the settings' user (SSL
        needs certificates the embedded broker does not make: use your own cluster)."""
        protocol = self.settings.kafka_security_protocol
        if protocol == "PLAINTEXT":
            return [
                f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{{controller}}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
            ]
        if protocol != "SASL_PLAINTEXT":
            raise BrokerError(
                f"VIGIL_KAFKA_SECURITY_PROTOCOL={protocol}: the embedded broker listens in "
                "PLAINTEXT or SASL_PLAINTEXT; for TLS set VIGIL_KAFKA_BOOTSTRAP to your cluster"
            )
        mechanism = self.settings.kafka_sasl_mechanism
        user, password = _jaas(self.settings.kafka_sasl_username), _jaas(self._password())
        if mechanism == "PLAIN":
            module = "org.apache.kafka.common.security.plain.PlainLoginModule"
            extra = f' user_{self.settings.kafka_sasl_username}="{password}"'
        else:
            module, extra = "org.apache.kafka.common.security.scram.ScramLoginModule", ""
        return [
            f"listeners=SASL_PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{{controller}}",
            f"advertised.listeners=SASL_PLAINTEXT://127.0.0.1:{port}",
            "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=SASL_PLAINTEXT",
            f"sasl.enabled.mechanisms={mechanism}",
            f"sasl.mechanism.inter.broker.protocol={mechanism}",
            f"listener.name.sasl_plaintext.{mechanism.lower()}.sasl.jaas.config={module} "
            f'required username="{user}" password="{password}"{extra};',
        ]

    def _password(self) -> str:
        secret = self.settings.kafka_sasl_password
        return secret.get_secret_value() if secret else ""

    def _write_config(self, port: int, controller: int) -> Path:
        data = self.dir / "data"
        config = self.dir / "server.properties"
        listener = [line.replace("{controller}", str(controller)) for line in self._listener(port)]
        # it may hold the SASL password: readable by its owner only
        config.touch(mode=0o600)
        config.chmod(0o600)
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{controller}",
                    *listener,
                    "controller.listener.names=CONTROLLER",
                    f"log.dirs={data}",
                    "num.partitions=1",
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=3",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    # the first consumer-group join would otherwise wait 3 s
                    "group.initial.rebalance.delay.ms=0",
                    "message.max.bytes=16777216",
                    "replica.fetch.max.bytes=16777216",
                    "log.cleaner.dedupe.buffer.size=33554432",
                    "",
                ]
            )
        )
        (self.dir / "log4j2.properties").write_text(_LOG4J2)
        (self.dir / "ports.json").write_text(json.dumps({"broker": port, "controller": controller}))
        return config

    def _java_command(self, java: str, main: str, *args: str) -> list[str]:
        return [
            java,
            "-Xms128m",
            "-Xmx1g",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
            "-cp",
            f"{self.home}/*",
            main,
            *args,
        ]

    def start(self, timeout: float = 90.0) -> str:
        """Format storage on first start, launch the broker and wait until it answers."""
        java = self._check_dependencies()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port, controller = self._choose_ports()
        config = self._write_config(self.port, controller)
        if not (self.dir / "data" / "meta.properties").exists():
            cluster_id = new_cluster_id()
            done = subprocess.run(
                self._java_command(
                    java,
                    "kafka.tools.StorageTool",
                    "format",
                    "--config",
                    str(config),
                    "--cluster-id",
                    cluster_id,
                    *self._scram_users(),
                ),
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise BrokerError(
                    f"formatting Kafka storage in {self.dir} failed: "
                    f"{(done.stderr or done.stdout).strip()[-800:]}"
                )
        log_file = self.log_file
        self._process = process.spawn(
            self._java_command(java, "kafka.Kafka", str(config)), log_file=log_file
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = log_file.read_text(errors="replace")[-1500:]
                raise BrokerError(
                    f"the Kafka broker exited with {self._process.returncode} "
                    f"during start; end of {log_file}:\n{tail}"
                )
            if bootstrap_ready(self.bootstrap, 2.0, self.settings.kafka_options):
                log.info("Kafka broker ready on %s (data in %s)", self.bootstrap, self.dir)
                return self.bootstrap
            time.sleep(0.5)
        self.stop()
        raise BrokerError(
            f"the Kafka broker did not answer on {self.bootstrap} within "
            f"{timeout:.0f} s; see {log_file}"
        )

    def _scram_users(self) -> list[str]:
        """The SCRAM user of the settings, made when the storage is formatted."""
        settings = self.settings
        if settings.kafka_security_protocol != "SASL_PLAINTEXT":
            return []
        if not settings.kafka_sasl_mechanism.startswith("SCRAM-"):
            return []
        for name, value in (
            ("USERNAME", settings.kafka_sasl_username),
            ("PASSWORD", self._password()),
        ):
            if any(c in (value or "") for c in ',[]="\\'):
                raise BrokerError(
                    f"VIGIL_KAFKA_SASL_{name}: the embedded broker's SCRAM user cannot hold any "
                    'of , [ ] = " \\'
                )
        user = f"name={settings.kafka_sasl_username},password={self._password()}"
        return ["--add-scram", f"{settings.kafka_sasl_mechanism}=[{user}]"]

    def stop(self) -> None:
        if self._process is not None:
            process.stop(self._process, "kafka broker", grace=30.0)
            self._process = None
