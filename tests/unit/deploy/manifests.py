"""Read the deployment files offline: the architecture table, kustomize output and NATS configs."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class ServiceRow:
    """One row of the table "Processes, ports and names" in docs/architecture.md."""

    name: str
    grpc_port: int
    metrics_port: int
    http_port: int | None

    @property
    def module(self) -> str:
        """The module the image runs for this service (`services.shopify_adapter`)."""
        return "services." + self.name.replace("-", "_")

    @property
    def env_prefix(self) -> str:
        """`SHOPIFY_ADAPTER` for `shopify-adapter`."""
        return self.name.replace("-", "_").upper()


def architecture_services(path: Path = ROOT / "docs" / "architecture.md") -> list[ServiceRow]:
    """The services of the architecture table, the source of truth for names and ports."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[1].isdigit():
            continue
        http = re.match(r"\d+", cells[3])
        rows.append(ServiceRow(cells[0], int(cells[1]), int(cells[2]), int(http.group()) if http else None))
    return rows


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document of a file."""
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def render_minimal(directory: Path) -> list[dict[str, Any]]:
    """A small kustomize: resources (files and nested kustomizations), generators, namespace, images.

    Used when `kubectl` is not installed. Patches are not applied and generated names get no hash
    suffix; the checks here do not depend on either.
    """
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        target = directory / entry
        objects += render_minimal(target) if target.is_dir() else load_yaml_documents(target)
    for generator in kustomization.get("configMapGenerator", []):
        data = {Path(f).name: (directory / f).read_text(encoding="utf-8") for f in generator.get("files", [])}
        objects.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data}
        )
    for generator in kustomization.get("secretGenerator", []):
        data = dict(literal.split("=", 1) for literal in generator.get("literals", []))
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": generator["name"]},
                "stringData": data,
            }
        )
    namespace = kustomization.get("namespace")
    if namespace:
        for obj in objects:
            if obj["kind"] != "Namespace":
                obj["metadata"]["namespace"] = namespace
    images = {i["name"]: i for i in kustomization.get("images", [])}
    for obj in objects:
        for container in pod_spec(obj).get("containers", []) if pod_spec(obj) else []:
            name, _, tag = container["image"].partition(":")
            if name in images:
                new = images[name]
                container["image"] = f"{new.get('newName', name)}:{new.get('newTag', tag)}"
    return objects


def render_kustomize(directory: Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize` renders, or the minimal renderer's when kubectl is missing."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return render_minimal(directory)
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec of a workload, or None for other kinds."""
    if obj.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return obj["spec"]["template"]["spec"]
    return None


# --- compose ----------------------------------------------------------------------------------

#: Names of settings whose values are credentials and must never be written into a deployment file.
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|_KEY(S)?$|CLIENT_ID")


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's environment as a mapping (compose allows a list too)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


# --- NATS configuration -------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<comment>(?:\#|//)[^\n]*)
      | "(?P<dq>(?:[^"\\]|\\.)*)"
      | '(?P<sq>[^']*)'
      | (?P<punct>[{}\[\],=:;])
      | (?P<word>[^\s{}\[\],=:;"'#]+(?::(?!\s)[^\s{}\[\],=;"'#]*)*)  # `:` inside URLs, not before a value
    )""",
    re.X,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"cannot tokenize NATS config at {text[pos : pos + 30]!r}")
        pos = match.end()
        kind = match.lastgroup
        if kind == "comment" or kind is None:
            continue
        value = match.group(kind)
        tokens.append(("str" if kind in ("dq", "sq") else kind, value))
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], locate: Callable[[str], Path]) -> None:
        self.tokens, self.pos, self.locate = tokens, 0, locate

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def mapping(self, closing: str | None) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while True:
            token = self.peek()
            if token is None:
                assert closing is None, "unterminated block"
                return result
            if token == ("punct", closing):
                self.take()
                return result
            if token[0] == "punct" and token[1] in ",;":
                self.take()
                continue
            _, key = self.take()
            if key == "include":
                _, path = self.take()
                included = parse_nats_config(self.locate(path), resolve=False, locate=self.locate)
                result.update(included)
                continue
            if self.peek() in (("punct", "="), ("punct", ":")):
                self.take()
            result[key] = self.value()

    def value(self) -> Any:
        kind, text = self.take()
        if (kind, text) == ("punct", "{"):
            return self.mapping("}")
        if (kind, text) == ("punct", "["):
            items = []
            while self.peek() != ("punct", "]"):
                if self.peek() == ("punct", ","):
                    self.take()
                    continue
                items.append(self.value())
            self.take()
            return items
        return text


def _resolve(value: Any, variables: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("$") and value[1:] in variables:
        return _resolve(variables[value[1:]], variables)
    if isinstance(value, dict):
        return {k: _resolve(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, variables) for v in value]
    return value


def parse_nats_config(
    path: Path, *, resolve: bool = True, locate: Callable[[str], Path] | None = None
) -> dict[str, Any]:
    """Parse a nats-server config file (with `include`); `$VAR` resolves to variables defined in it.

    References to variables the file does not define (environment variables such as passwords)
    stay as the text `$NAME`.

    Args:
        path: the config file.
        resolve: replace `$VAR` references by the variables the config defines.
        locate: maps an `include` path to the file on this machine (a container mount, say);
            by default it is relative to `path`'s folder.
    """
    locate = locate or (lambda include: path.parent / include)
    config = _Parser(_tokens(path.read_text(encoding="utf-8")), locate).mapping(None)
    return _resolve(config, config) if resolve else config


def as_list(value: Any) -> list[str]:
    """A NATS permission value (one subject or a list) as a list."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
