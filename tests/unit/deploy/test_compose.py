"""compose.yaml: every service of the architecture table, wired to NATS, PostgreSQL, Jaeger, sandbox."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import pytest

from tests.unit.deploy.manifests import ROOT, SECRET_NAME, environment, parse_nats_config

SANDBOX = {
    "sandbox-shopify": ("SHOPIFY_BASE_URL", 8001),
    "sandbox-business-central": ("BC_BASE_URL", 8002),
    "sandbox-tpl": ("TPL_BASE_URL", 8003),
}
ADAPTER_SANDBOX = {
    "shopify-adapter": "sandbox-shopify",
    "erp-adapter": "sandbox-business-central",
    "tpl-adapter": "sandbox-tpl",
}


def test_compose_has_nats_postgres_jaeger_and_the_sandbox(compose):
    services = compose["services"]

    missing = {"nats", "postgres", "jaeger", *SANDBOX} - set(services)

    assert not missing, f"compose.yaml lacks {sorted(missing)}"


def test_every_architecture_service_runs_its_module_with_the_table_ports(compose, architecture):
    for row in architecture:
        service = compose["services"].get(row.name)
        assert service is not None, f"{row.name} is in docs/architecture.md but not in compose.yaml"
        env = environment(service)

        assert service["command"] == [row.module], row.name
        assert env["SERVICE_NAME"] == row.name
        assert env["OTEL_SERVICE_NAME"] == row.name
        assert env["GRPC_PORT"] == str(row.grpc_port), row.name
        assert env["METRICS_PORT"] == str(row.metrics_port), row.name
        assert env.get("HTTP_PORT") == (str(row.http_port) if row.http_port else None), row.name


def test_services_reach_postgres_nats_jaeger_and_their_peers_by_compose_name(compose, architecture):
    for row in architecture:
        env = environment(compose["services"][row.name])

        assert re.fullmatch(
            rf"postgresql://{row.name}:[^@]+@postgres:5432/{row.name}", env["DATABASE_URL"]
        ), row.name
        assert re.fullmatch(rf"nats://{row.name}:[^@]+@nats:4222", env["NATS_URL"]), row.name
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317"
        assert env["GRPC_HOST"] == "0.0.0.0", f"{row.name} would listen on loopback inside its container"
        for peer in architecture:
            assert env[f"{peer.env_prefix}_ADDR"] == f"{peer.name}:{peer.grpc_port}", (row.name, peer.name)
        for system, (variable, port) in SANDBOX.items():
            assert env[variable] == f"http://{system}:{port}", (row.name, variable)


def test_sandbox_systems_listen_on_their_ports(compose):
    for name, (_, port) in SANDBOX.items():
        service = compose["services"][name]

        assert service["command"][0] == "sandbox." + name.removeprefix("sandbox-").replace("-", "_")
        assert service["command"][1:] == ["--host", "0.0.0.0", "--port", str(port)]
        assert "healthcheck" in service, name


def test_every_service_is_healthchecked_over_grpc_on_its_own_port(compose, architecture):
    for row in architecture:
        test = compose["services"][row.name]["healthcheck"]["test"]

        assert test == ["CMD", "python", "-m", "libs.rpc.probe", "--addr", f"127.0.0.1:{row.grpc_port}"], (
            row.name
        )


def test_services_start_after_healthy_nats_postgres_and_their_sandbox(compose, architecture):
    for row in architecture:
        depends = compose["services"][row.name]["depends_on"]

        assert depends["nats"]["condition"] == "service_healthy", row.name
        assert depends["postgres"]["condition"] == "service_healthy", row.name
        if row.name in ADAPTER_SANDBOX:
            assert depends[ADAPTER_SANDBOX[row.name]]["condition"] == "service_healthy", row.name
        for target, spec in depends.items():
            assert target in compose["services"], f"{row.name} depends on unknown {target}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in compose["services"][target], (
                    f"{target} is awaited but has no healthcheck"
                )


def test_services_stop_later_than_their_shutdown_grace(compose, architecture):
    for row in architecture:
        service = compose["services"][row.name]
        grace = float(environment(service)["SHUTDOWN_GRACE_S"])

        assert int(service["stop_grace_period"].rstrip("s")) > grace, row.name


def test_services_run_non_root_on_a_read_only_filesystem(compose, architecture):
    for row in architecture:
        service = compose["services"][row.name]

        assert str(service["user"]).split(":")[0] not in ("0", "root"), row.name
        assert service["read_only"] is True, row.name


def test_no_credential_is_written_into_compose(compose):
    for name, service in compose["services"].items():
        for variable, value in environment(service).items():
            if SECRET_NAME.search(variable):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+(:-[^}]*)?\}", value), f"{name}: {variable} is a literal"
            userinfo = re.match(r"\w+(\+\w+)?://[^:/@]+:([^@]+)@", value)
            if userinfo:
                assert userinfo.group(2).startswith("${"), f"{name}: {variable} embeds a literal password"


def test_postgres_15_creates_a_database_per_service(compose, architecture):
    postgres = compose["services"]["postgres"]
    env = environment(postgres)

    assert re.match(r"postgres:15(\.\d+)?(-|$)", postgres["image"])
    assert set(env["MESH_DATABASES"].split()) == {row.name for row in architecture}
    mounts = {m.split(":")[1]: m.split(":")[0] for m in postgres["volumes"]}
    init = [host for target, host in mounts.items() if target.startswith("/docker-entrypoint-initdb.d/")]
    assert init and (ROOT / init[0]).is_file()


def test_jaeger_takes_otlp_grpc_and_serves_its_ui(compose):
    jaeger = compose["services"]["jaeger"]

    assert any(p.endswith(":16686") for p in jaeger["ports"])
    assert re.match(r"jaegertracing/(jaeger|all-in-one):\d", jaeger["image"])


def _nats_mounts(compose) -> dict[str, str]:
    nats = compose["services"]["nats"]
    return {m.split(":")[1]: m.split(":")[0] for m in nats["volumes"] if m.startswith("./")}


def test_compose_nats_is_jetstream_on_disk_with_fsync_always_and_users(compose, architecture):
    mounts = _nats_mounts(compose)
    command = compose["services"]["nats"]["command"]
    config_in_container = command[command.index("-c") + 1]
    folder = PurePosixPath(config_in_container).parent

    config = parse_nats_config(
        ROOT / mounts[config_in_container],
        locate=lambda include: ROOT / mounts[str(folder / include)],
    )

    assert config["jetstream"]["sync_interval"] == "always"
    assert config["jetstream"]["store_dir"].startswith("/data")
    assert "no_auth_user" not in config
    users = {u["user"]: u for u in config["authorization"]["users"]}
    nats_env = environment(compose["services"]["nats"])
    for row in architecture:
        assert row.name in users, f"no NATS user for {row.name}"
        password = users[row.name]["password"]
        assert password.startswith("$") and password[1:] in nats_env, row.name
        # The service logs in as its own user with the password the server was given.
        url = environment(compose["services"][row.name])["NATS_URL"]
        assert url == f"nats://{row.name}:{nats_env[password[1:]]}@nats:4222", row.name


@pytest.mark.parametrize("name", ["nats", "postgres", "jaeger"])
def test_infrastructure_images_are_pinned(compose, name):
    image = compose["services"][name]["image"]

    assert ":" in image and not image.endswith(":latest"), image
