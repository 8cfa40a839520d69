"""A throw-away PostgreSQL cluster on a free loopback port, for the test session and the benchmark.

pytest-postgresql's process fixture runs `pg_ctl` as the current user, and PostgreSQL refuses to
run as root, which is who CI runs as here. This starts the cluster as the `postgres` system user
when we are root (and as ourselves otherwise). See docs/decisions/0004-postgres-test-cluster.md.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from libs.bus.embedded import free_port, wait_for_port


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for version in ("17", "16", "15", "14"):
        candidate = Path(f"/usr/lib/postgresql/{version}/bin/{name}")
        if candidate.exists():
            return str(candidate)
    raise FileNotFoundError(f"{name} not found; install PostgreSQL (apt-get install postgresql)")


@dataclass
class PostgresCluster:
    """A running cluster; `url(db)` gives an SQLAlchemy URL for database `db`."""

    datadir: Path
    port: int
    run_as: str | None

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        full = ["runuser", "-u", self.run_as, "--", *cmd] if self.run_as else list(cmd)
        return subprocess.run(full, check=check, capture_output=True)

    @classmethod
    def start(cls, *, fsync: bool = False) -> PostgresCluster:
        """initdb and start a cluster on a free port; `fsync=False` (tests) trades durability for
        speed, the benchmark keeps PostgreSQL's durable default."""
        run_as = "postgres" if os.geteuid() == 0 else None
        base = Path(tempfile.mkdtemp(prefix="retail-mesh-pg-"))
        datadir = base / "data"
        if run_as:
            user = pwd.getpwnam(run_as)
            os.chown(base, user.pw_uid, user.pw_gid)
        cluster = cls(datadir=datadir, port=free_port(), run_as=run_as)
        cluster._run(_pg_bin("initdb"), "-D", str(datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={cluster.port} -c unix_socket_directories={base} "
            f"-c fsync={'on' if fsync else 'off'} -c max_connections=300"
        )
        log = str(base / "log")
        cluster._run(_pg_bin("pg_ctl"), "-D", str(datadir), "-o", options, "-l", log, "-w", "start")
        wait_for_port("127.0.0.1", cluster.port, 30)
        return cluster

    def postmaster_pid(self) -> int | None:
        """The server's main process id (from `postmaster.pid`), or None when it is not running."""
        try:
            return int((self.datadir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        self._run(
            _pg_bin("psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-c",
            f'CREATE DATABASE "{name}"',
        )
        return self.url(name)

    def stop(self) -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.datadir.parent, ignore_errors=True)
