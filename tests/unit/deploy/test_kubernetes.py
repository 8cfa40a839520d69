"""k8s/: one Deployment and Service per service, gRPC probes, HPA and PDB, NATS cluster, Jaeger."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.unit.deploy.manifests import ROOT, SECRET_NAME, environment, load_yaml_documents, pod_spec

DOMAIN = ("orders", "inventory", "shipments", "returns", "catalog")


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    """The object of `kind` named `name` (generated objects may carry a hash suffix)."""
    for obj in objects:
        obj_name = obj["metadata"]["name"]
        if obj["kind"] == kind and (
            obj_name == name or re.fullmatch(rf"{re.escape(name)}-[a-z0-9]{{10}}", obj_name)
        ):
            return obj
    return None


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    """The one application container of a workload."""
    containers = pod_spec(deployment)["containers"]
    assert len(containers) == 1, deployment["metadata"]["name"]
    return containers[0]


def env_of(objects, deployment) -> dict[str, Any]:
    """Environment of the container: ConfigMap entries (envFrom) then `env`, value or valueFrom."""
    c = container(deployment)
    env: dict[str, Any] = {}
    for source in c.get("envFrom", []):
        config_map = named(objects, "ConfigMap", source["configMapRef"]["name"])
        assert config_map is not None, f"envFrom names a missing ConfigMap {source}"
        env.update(config_map["data"])
    for item in c.get("env", []):
        env[item["name"]] = item.get("value", item.get("valueFrom"))
    return env


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a matchLabels selector selects these labels."""
    return all(labels.get(k) == v for k, v in selector.items())


def test_every_architecture_service_has_a_deployment_running_its_module(k8s, architecture):
    for row in architecture:
        deployment = named(k8s, "Deployment", row.name)
        assert deployment is not None, f"{row.name} has no Deployment"

        assert container(deployment)["args"] == [row.module]
        ports = {p["name"]: p["containerPort"] for p in container(deployment)["ports"]}
        expected = {"grpc": row.grpc_port, "metrics": row.metrics_port}
        if row.http_port:
            expected["http"] = row.http_port
        assert ports == expected, row.name


def test_deployments_use_the_architecture_settings(k8s, architecture):
    for row in architecture:
        env = env_of(k8s, named(k8s, "Deployment", row.name))

        assert env["SERVICE_NAME"] == row.name
        assert env["OTEL_SERVICE_NAME"] == row.name
        assert env["GRPC_PORT"] == str(row.grpc_port)
        assert env["METRICS_PORT"] == str(row.metrics_port)
        assert env.get("HTTP_PORT") == (str(row.http_port) if row.http_port else None)
        assert env["GRPC_HOST"] == "0.0.0.0"
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317"
        assert env["NATS_URL"] == f"nats://{row.name}:$(NATS_PASSWORD)@nats:4222"
        assert env["DATABASE_URL"]["secretKeyRef"]["name"] == f"{row.name}-db"
        for peer in architecture:
            assert env[f"{peer.env_prefix}_ADDR"] == f"{peer.name}:{peer.grpc_port}"


def test_compose_and_k8s_give_each_service_the_same_variables(k8s, compose, architecture):
    for row in architecture:
        deployment = named(k8s, "Deployment", row.name)
        k8s_env = env_of(k8s, deployment)
        # Optional secrets (service auth keys) are off in compose; NATS_PASSWORD only builds NATS_URL.
        optional = {
            n for n, v in k8s_env.items() if isinstance(v, dict) and v.get("secretKeyRef", {}).get("optional")
        }
        composed = set(re.findall(r"\$\(([A-Z_]+)\)", str(k8s_env)))

        k8s_names = set(k8s_env) - optional - composed
        compose_names = set(environment(compose["services"][row.name]))

        assert k8s_names == compose_names, (
            f"{row.name}: only in k8s {sorted(k8s_names - compose_names)}, "
            f"only in compose {sorted(compose_names - k8s_names)}"
        )


def test_credentials_come_from_secrets(k8s, architecture):
    for row in architecture:
        for name, value in env_of(k8s, named(k8s, "Deployment", row.name)).items():
            if SECRET_NAME.search(name):
                assert isinstance(value, dict) and "secretKeyRef" in value, (
                    f"{row.name}: {name} is not a Secret ref"
                )
    assert not [o for o in k8s if o["kind"] == "Secret"], (
        "the base must not carry Secrets; create them per install"
    )


def test_readiness_and_liveness_are_grpc_probes_on_the_grpc_port(k8s, architecture):
    for row in architecture:
        c = container(named(k8s, "Deployment", row.name))

        for probe in ("readinessProbe", "livenessProbe"):
            assert c[probe]["grpc"]["port"] == row.grpc_port, f"{row.name} {probe}"


def test_containers_have_requests_and_limits(k8s):
    for deployment in [o for o in k8s if pod_spec(o)]:
        for c in pod_spec(deployment)["containers"]:
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][bound]), (
                    deployment["metadata"]["name"],
                    bound,
                )


def test_pods_run_non_root_with_a_read_only_root_filesystem(k8s):
    for workload in [o for o in k8s if pod_spec(o)]:
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]

        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"].get("runAsUser", 1) != 0, name
        for c in spec["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], name


def test_termination_grace_outlasts_the_shutdown_grace_and_pre_stop(k8s, architecture):
    for row in architecture:
        deployment = named(k8s, "Deployment", row.name)
        grace = float(env_of(k8s, deployment)["SHUTDOWN_GRACE_S"])
        pre_stop = (
            container(deployment).get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        )
        sleep = (
            float(m.group(1)) if (m := re.search(r"sleep\((\d+(?:\.\d+)?)\)", " ".join(pre_stop))) else 0.0
        )

        assert pod_spec(deployment)["terminationGracePeriodSeconds"] > grace + sleep, row.name


def test_metrics_are_announced_for_prometheus(k8s, architecture):
    for row in architecture:
        annotations = named(k8s, "Deployment", row.name)["spec"]["template"]["metadata"]["annotations"]

        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(row.metrics_port)


def test_every_service_has_a_matching_service_object(k8s, architecture):
    for row in architecture:
        deployment = named(k8s, "Deployment", row.name)
        service = named(k8s, "Service", row.name)
        assert service is not None, f"{row.name} has no Service"
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]

        assert selects(service["spec"]["selector"], pod_labels), row.name
        assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels), row.name
        ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
        assert ports["grpc"] == (row.grpc_port, "grpc"), row.name
        assert ports["metrics"] == (row.metrics_port, "metrics"), row.name
        if row.http_port:
            assert ports["http"] == (row.http_port, "http"), row.name


@pytest.mark.parametrize("name", DOMAIN)
def test_domain_services_scale_on_cpu_and_keep_one_pod_through_disruptions(k8s, name):
    deployment = named(k8s, "Deployment", name)
    hpa = named(k8s, "HorizontalPodAutoscaler", name)
    pdb = named(k8s, "PodDisruptionBudget", name)
    assert hpa is not None and pdb is not None, name

    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in hpa["spec"]["metrics"])
    assert selects(
        pdb["spec"]["selector"]["matchLabels"], deployment["spec"]["template"]["metadata"]["labels"]
    )


def test_no_disruption_budget_blocks_a_node_drain(k8s):
    workloads = [o for o in k8s if o["kind"] in ("Deployment", "StatefulSet")]
    for pdb in [o for o in k8s if o["kind"] == "PodDisruptionBudget"]:
        targets = [
            w
            for w in workloads
            if selects(pdb["spec"]["selector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(targets) == 1, f"PDB {pdb['metadata']['name']} selects {len(targets)} workloads"
        replicas = targets[0]["spec"]["replicas"]

        if "minAvailable" in pdb["spec"]:
            assert pdb["spec"]["minAvailable"] < replicas, pdb["metadata"]["name"]
        else:
            assert pdb["spec"]["maxUnavailable"] >= 1, pdb["metadata"]["name"]


def test_images_are_pinned_never_latest(k8s, k8s_dev):
    for obj in [o for o in k8s + k8s_dev if pod_spec(o)]:
        for c in pod_spec(obj)["containers"]:
            name, _, tag = c["image"].rpartition(":")

            assert name and tag and tag != "latest" and "/" not in tag, c["image"]


def test_nats_cluster_has_three_servers_on_persistent_volumes(k8s):
    nats = named(k8s, "StatefulSet", "nats")

    assert nats["spec"]["replicas"] == 3
    claims = {t["metadata"]["name"] for t in nats["spec"]["volumeClaimTemplates"]}
    mounts = {m["name"]: m["mountPath"] for m in container(nats)["volumeMounts"]}
    assert "data" in claims and mounts["data"] == "/data"
    version = tuple(int(x) for x in re.search(r":(\d+)\.(\d+)\.(\d+)", container(nats)["image"]).groups())
    assert version >= (2, 12, 3), "JetStream needs nats-server >= 2.12.3 (reliability.md)"
    assert named(k8s, "PodDisruptionBudget", "nats")["spec"]["maxUnavailable"] == 1


def test_nats_servers_get_every_user_password_from_the_secret(k8s, architecture):
    nats = named(k8s, "StatefulSet", "nats")
    env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in container(nats)["env"]}

    for row in architecture:
        deployment = named(k8s, "Deployment", row.name)
        ref = env_of(k8s, deployment)["NATS_PASSWORD"]["secretKeyRef"]
        assert env[ref["key"]] == {"name": "nats-users", "key": ref["key"]}, row.name
    assert env["NATS_ADMIN_PASSWORD"]["name"] == "nats-users"


def test_streams_are_replicated_three_times_in_kubernetes(k8s):
    assert named(k8s, "ConfigMap", "mesh-config")["data"]["NATS_STREAM_REPLICAS"] == "3"


def test_jaeger_serves_otlp_grpc_and_the_ui(k8s):
    deployment = named(k8s, "Deployment", "jaeger")
    service = named(k8s, "Service", "jaeger")

    assert deployment is not None
    ports = {p["port"] for p in service["spec"]["ports"]}
    assert {4317, 16686} <= ports


def test_everything_is_in_the_retail_mesh_namespace(k8s):
    assert named(k8s, "Namespace", "retail-mesh") is not None
    for obj in k8s:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == "retail-mesh", obj["metadata"]["name"]


def test_every_manifest_file_is_listed_in_a_kustomization():
    for folder in (ROOT / "k8s" / "base", ROOT / "k8s" / "overlays" / "dev"):
        listed = set(yaml.safe_load((folder / "kustomization.yaml").read_text())["resources"])
        files = {str(p.relative_to(folder)) for p in folder.rglob("*.yaml") if p.name != "kustomization.yaml"}

        assert files <= listed, f"{folder}: not in kustomization.yaml: {sorted(files - listed)}"


def test_dev_overlay_provides_every_secret_the_pods_need(k8s_dev):
    secrets = {
        o["metadata"]["name"]: {**o.get("data", {}), **o.get("stringData", {})}
        for o in k8s_dev
        if o["kind"] == "Secret"
    }
    for workload in [o for o in k8s_dev if pod_spec(o)]:
        for c in pod_spec(workload)["containers"]:
            for item in c.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    assert ref["name"] in secrets, (
                        f"{workload['metadata']['name']}: Secret {ref['name']} missing"
                    )
                    assert ref["key"] in secrets[ref["name"]], f"{ref['name']} lacks {ref['key']}"


def test_dev_postgres_init_script_is_the_compose_one():
    dev = (ROOT / "k8s" / "overlays" / "dev" / "init-databases.sh").read_text()

    assert dev == (ROOT / "deploy" / "postgres" / "init-databases.sh").read_text()


def test_minimal_renderer_agrees_with_kubectl_on_what_exists(k8s):
    from tests.unit.deploy.manifests import render_minimal

    def key(obj):
        return obj["kind"], re.sub(r"-[a-z0-9]{10}$", "", obj["metadata"]["name"])

    assert sorted(map(key, render_minimal(ROOT / "k8s"))) == sorted(map(key, k8s))


def test_base_files_parse_as_kubernetes_objects():
    for path in (ROOT / "k8s").rglob("*.yaml"):
        for doc in load_yaml_documents(path):
            assert "kind" in doc and ("apiVersion" in doc), path
