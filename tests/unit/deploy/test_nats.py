"""NATS configs: JetStream on disk with fsync always, no anonymous access, least-privilege users (C6)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.deploy.manifests import ROOT, as_list, parse_nats_config

CLUSTER_CONF = ROOT / "k8s" / "base" / "nats" / "nats.conf"
COMPOSE_CONF = ROOT / "deploy" / "nats" / "nats.conf"
AUTH_CONF = ROOT / "k8s" / "base" / "nats" / "auth.conf"
DOMAIN = ("orders", "inventory", "shipments", "returns", "catalog", "ops")
ADMIN_ONLY = (
    "$JS.API.STREAM.DELETE.",
    "$JS.API.STREAM.PURGE.",
    "$JS.API.STREAM.MSG.DELETE.",
    "$JS.API.CONSUMER.DELETE.",
)


def _render_auth():
    spec = importlib.util.spec_from_file_location("render_auth", ROOT / "deploy" / "nats" / "render_auth.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _compose_config():
    return parse_nats_config(
        COMPOSE_CONF,
        locate=lambda include: AUTH_CONF if include == "./auth.conf" else COMPOSE_CONF.parent / include,
    )


def _users(config) -> dict[str, dict]:
    return {u["user"]: u for u in config["authorization"]["users"]}


@pytest.fixture(scope="module")
def events():
    """Every event contract and who publishes it, read from protos/."""
    found = _render_auth().read_events()
    assert len(found) > 20, "no events found in protos/"
    return found


@pytest.mark.parametrize("path", [CLUSTER_CONF, COMPOSE_CONF], ids=["k8s", "compose"])
def test_jetstream_stores_on_disk_and_fsyncs_before_every_ack(path):
    config = parse_nats_config(
        path, locate=lambda include: path.parent / include if path == CLUSTER_CONF else AUTH_CONF
    )

    assert config["jetstream"]["sync_interval"] == "always"
    assert config["jetstream"]["store_dir"]
    assert config["jetstream"].get("max_file_store"), "JetStream needs a file store"
    assert config["http"].startswith("127.0.0.1:"), "the monitoring port binds to loopback only (C6)"


def test_cluster_routes_name_the_three_statefulset_servers():
    cluster = parse_nats_config(CLUSTER_CONF)["cluster"]

    assert sorted(cluster["routes"]) == [f"nats://nats-{i}.nats-headless:6222" for i in range(3)]


@pytest.mark.parametrize(
    "config", [parse_nats_config(CLUSTER_CONF), _compose_config()], ids=["k8s", "compose"]
)
def test_no_anonymous_access_and_a_user_per_service_plus_admin(config, architecture):
    users = _users(config)

    assert "no_auth_user" not in config
    assert {row.name for row in architecture} | {"admin"} <= set(users)
    for name, user in users.items():
        assert user["password"].startswith("$"), f"{name}: password must come from the environment"
        assert user.get("permissions"), f"{name} has no permissions"


def test_each_service_publishes_only_its_own_event_subjects(events, architecture):
    users = _users(parse_nats_config(CLUSTER_CONF))
    for row in architecture:
        publish = users[row.name]["permissions"]["publish"]
        allowed = {s for s in as_list(publish["allow"]) if not s.startswith("$")}
        denied = set(as_list(publish.get("deny")))

        if row.name in DOMAIN:
            assert allowed == {f"retail.{row.name}.v1.>"}, row.name
            forged = {e.subject for e in events if e.context == row.name and e.publisher != row.name}
            assert forged <= denied, f"{row.name} may forge {sorted(forged - denied)}"
        else:
            own = {e.subject for e in events if e.publisher == row.name or e.context == "integration"}
            assert allowed == own, row.name


def test_jetstream_api_is_limited_to_own_stream_and_own_consumers(architecture):
    users = _users(parse_nats_config(CLUSTER_CONF))
    for row in architecture:
        permissions = users[row.name]["permissions"]
        for subject in as_list(permissions["publish"]["allow"]):
            if not subject.startswith("$JS."):
                continue
            tokens = subject.split(".")
            assert not subject.startswith(ADMIN_ONLY), f"{row.name} may {subject}"
            if subject.startswith(("$JS.API.CONSUMER.", "$JS.ACK.")):
                assert row.name in tokens, f"{row.name}: {subject} is not its own consumer"
            elif subject.startswith(("$JS.API.STREAM.CREATE.", "$JS.API.STREAM.UPDATE.")):
                owned = row.name.upper() if row.name in DOMAIN else "INTEGRATION"
                assert tokens[-1] == owned, f"{row.name} may change stream {tokens[-1]}"
            else:
                assert subject == "$JS.API.INFO" or subject.startswith(
                    ("$JS.API.STREAM.INFO.", "$JS.API.STREAM.MSG.GET.")
                ), subject
        for prefix in ADMIN_ONLY:
            assert prefix + ">" in as_list(permissions["publish"]["deny"]), f"{row.name} lacks deny {prefix}>"
        for subject in as_list(permissions["subscribe"]["allow"]):
            assert subject == "_INBOX.>" or (
                subject.startswith("$JS.EVENT.ADVISORY.") and subject.endswith("." + row.name)
            ), subject


def test_only_admin_may_purge_or_delete():
    users = _users(parse_nats_config(CLUSTER_CONF))

    assert as_list(users["admin"]["permissions"]["publish"]["allow"]) == [">"]


def test_auth_conf_is_rendered_from_the_current_protos():
    expected = _render_auth().render()

    assert AUTH_CONF.read_text(encoding="utf-8") == expected, "run: python deploy/nats/render_auth.py"


def _nats_server() -> str | None:
    beside = Path(sys.executable).parent / "nats-server"
    return str(beside) if beside.exists() else shutil.which("nats-server")


def _server_env(tmp_path: Path, architecture) -> dict[str, str]:
    env = dict(os.environ, POD_NAME="nats-0", NATS_ADMIN_PASSWORD="admin-pw")
    for row in architecture:
        env[f"{row.env_prefix}_NATS_PASSWORD"] = f"{row.name}-pw"
    return env


def _copy_config(source: Path, tmp_path: Path, port: int = 4222) -> Path:
    text = (
        source.read_text()
        .replace("/data/jetstream", str(tmp_path / "js"))
        .replace("/var/run/nats", str(tmp_path))
    )
    text = text.replace("0.0.0.0:4222", f"127.0.0.1:{port}").replace("127.0.0.1:8222", "127.0.0.1:-1")
    (tmp_path / "nats.conf").write_text(text)
    shutil.copy(AUTH_CONF, tmp_path / "auth.conf")
    return tmp_path / "nats.conf"


@pytest.mark.skipif(_nats_server() is None, reason="nats-server not installed (make install)")
@pytest.mark.parametrize("source", [CLUSTER_CONF, COMPOSE_CONF], ids=["k8s", "compose"])
def test_nats_server_accepts_the_config(source, tmp_path, architecture):
    config = _copy_config(source, tmp_path)

    result = subprocess.run(
        [_nats_server(), "-t", "-c", str(config)],
        env=_server_env(tmp_path, architecture),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(_nats_server() is None, reason="nats-server not installed (make install)")
def test_a_real_server_enforces_the_permissions(tmp_path, architecture):
    """Anonymous clients are refused; a service can neither forge another's event nor purge a stream."""
    import nats
    from nats.js.api import StreamConfig

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = _copy_config(COMPOSE_CONF, tmp_path, port)
    server = subprocess.Popen(
        [_nats_server(), "-c", str(config)],
        env=_server_env(tmp_path, architecture),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"127.0.0.1:{port}"

    async def scenario() -> dict[str, object]:
        outcome: dict[str, object] = {}
        try:
            await nats.connect(f"nats://{url}", allow_reconnect=False, connect_timeout=2)
            outcome["anonymous"] = "connected"
        except Exception as exc:
            outcome["anonymous"] = type(exc).__name__
        orders = await nats.connect(f"nats://orders:orders-pw@{url}", error_cb=_ignore)
        erp = await nats.connect(f"nats://erp-adapter:erp-adapter-pw@{url}", error_cb=_ignore)
        js, erp_js = orders.jetstream(timeout=1), erp.jetstream(timeout=1)
        await js.add_stream(StreamConfig(name="ORDERS", subjects=["retail.orders.v1.>"]))
        outcome["own"] = (await js.publish("retail.orders.v1.OrderAccepted", b"e")).seq
        outcome["adapter_own"] = (await erp_js.publish("retail.orders.v1.ErpSalesOrderCreated", b"e")).seq
        for label, call in (
            ("forge", erp_js.publish("retail.orders.v1.OrderAccepted", b"e", timeout=1)),
            ("purge", js.purge_stream("ORDERS")),
        ):
            try:
                await call
                outcome[label] = "allowed"
            except Exception as exc:
                outcome[label] = type(exc).__name__
        await orders.close()
        await erp.close()
        return outcome

    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "nats-server did not start"
                time.sleep(0.05)
        outcome = asyncio.run(scenario())
    finally:
        server.terminate()
        server.wait(10)

    assert outcome["anonymous"] != "connected"
    assert outcome["own"] == 1 and outcome["adapter_own"] == 2
    assert outcome["forge"] != "allowed"
    assert outcome["purge"] != "allowed"


async def _ignore(_error: Exception) -> None:
    """Permission violations are expected here; the test checks their effect."""
