"""The deployment files as an operator uses them: the image recipe, the Compose file and
the Kubernetes overlays, checked against their schemas and for the facts the running
services rely on (settings, probes, secrets, one database per member)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from credit.errors import InvalidInput
from gateway.settings import GatewaySettings
from nodes.settings import NodeSettings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCS = ROOT / "docs" / "deploy.md"
REGIONS = ("beijing", "tianjin", "hebei")
# The Kubernetes version the manifests are validated against (kubernetes-validate ships
# schemas for it); the manifests use nothing newer than Kubernetes 1.20 offers.
K8S_VERSION = "1.30"
# What the operator creates in each namespace (docs/deploy.md); the manifests only refer to them.
OPERATOR_SECRETS = {"jjj-db", "jjj-node-tls", "jjj-gateway-tls", "jjj-gateway-keys"}
OPERATOR_CONFIGMAPS = {"jjj-gateway-jwks"}
WORKLOADS = {"Deployment", "StatefulSet"}


# --- the image ------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def test_dockerfile_runs_jjj_as_a_non_root_user_on_python_311_slim() -> None:
    instructions = dockerfile_instructions((DEPLOY / "Dockerfile").read_text(encoding="utf-8"))
    # Build arguments' defaults, such as PYTHON_IMAGE=python:3.11-slim, as FROM lines use them.
    args = dict(arg.split("=", 1) for word, arg in instructions if word == "ARG" and "=" in arg)
    stages = [
        re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m[1], m[0]), arg) for word, arg in instructions if word == "FROM"
    ]
    assert stages, "no FROM"
    assert all(stage.split()[0] == "python:3.11-slim" for stage in stages), stages

    final = instructions[max(i for i, (word, _) in enumerate(instructions) if word == "FROM") :]
    users = [arg for word, arg in final if word == "USER"]
    assert users, "the final stage sets no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), user

    entrypoints = [arg for word, arg in final if word == "ENTRYPOINT"]
    assert entrypoints, "no ENTRYPOINT"
    assert json.loads(entrypoints[-1]) == ["jjj"], entrypoints[-1]

    runs = " ".join(arg for word, arg in instructions if word == "RUN")
    assert re.search(r"pip install \.(\s|$)", runs), "the project is not installed with `pip install .`"


def test_dockerfile_copies_every_package_of_the_project() -> None:
    instructions = dockerfile_instructions((DEPLOY / "Dockerfile").read_text(encoding="utf-8"))
    sources: set[str] = set()
    for word, arg in instructions:
        if word == "COPY" and not arg.startswith("--from"):
            *parts, _destination = arg.split()
            sources.update(part.rstrip("/") for part in parts if not part.startswith("--"))
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository (the build context is its root)"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {pattern.rstrip("*") for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages, "no packages in pyproject.toml"
    assert packages | {"pyproject.toml", pyproject["project"]["readme"]} <= sources, sources

    # BuildKit's Dockerfile-specific ignore file must let those same paths through.
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    for source in sources:
        assert f"!{source}" in ignore or f"!{source}/" in ignore, f"{source} is excluded from the build context"


# --- Docker Compose -------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def compose_schema() -> dict[str, Any]:
    vendored = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema: dict[str, Any] = json.loads(vendored.read_text(encoding="utf-8"))
    return schema


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)

    # and the schema does catch mistakes
    broken = {**compose, "services": {**compose["services"], "gateway": {**compose["services"]["gateway"], "port": 1}}}
    assert list(validator_class(schema).iter_errors(broken))


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def names(entries: list[Any]) -> set[str]:
    """Service-level secrets or configs: short (a name) or long (a mapping with source) syntax."""
    return {entry if isinstance(entry, str) else entry["source"] for entry in entries}


@pytest.mark.parametrize("region", REGIONS)
def test_compose_gives_each_node_its_own_database(compose: dict[str, Any], region: str) -> None:
    services = compose["services"]
    node = services[f"node-{region}"]
    assert node["command"] == ["node"]
    env = environment(node)
    assert env["JJJ_NODE_REGION"] == region
    # Each node keeps replicas of the other two regions, by their service names.
    peers = dict(item.split("=") for item in env["JJJ_NODE_PEERS"].split(","))
    assert peers == {other: f"node-{other}:50051" for other in REGIONS if other != region}
    database = re.fullmatch(r"postgresql://jjj:[^@]+@([\w-]+):5432/(\w+)", env["JJJ_NODE_DB_URL"])
    assert database, env["JJJ_NODE_DB_URL"]
    db_service = database[1]
    assert db_service == f"{region}-db"
    assert services[db_service]["image"] == "postgres:16"
    assert node["depends_on"][db_service] == {"condition": "service_healthy"}
    assert environment(services[db_service])["POSTGRES_DB"] == database[2]

    volume = services[db_service]["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    others = [services[f"{other}-db"]["volumes"][0].split(":")[0] for other in REGIONS if other != region]
    assert volume not in [*others, services["gateway-db"]["volumes"][0].split(":")[0]]


def test_compose_gateway_has_its_own_database_and_reaches_all_three_nodes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    gateway = services["gateway"]
    assert gateway["command"] == ["gateway"]
    env = environment(gateway)
    database = re.fullmatch(r"postgresql://jjj:[^@]+@([\w-]+):5432/(\w+)", env["JJJ_GATEWAY_DB_URL"])
    assert database and database[1] == "gateway-db"
    assert environment(services["gateway-db"])["POSTGRES_DB"] == database[2]
    assert gateway["depends_on"]["gateway-db"] == {"condition": "service_healthy"}

    nodes = dict(item.split("=", 1) for item in env["JJJ_GATEWAY_NODES"].split(","))
    assert set(nodes) == set(REGIONS)
    for region, address in nodes.items():
        host, port = address.rsplit(":", 1)
        assert host == f"node-{region}" and host in services
        assert port == environment(services[host])["JJJ_NODE_LISTEN"].rsplit(":", 1)[1]
        assert gateway["depends_on"][host] == {"condition": "service_healthy"}


def interpolated(value: str) -> str:
    """A Compose value as it is with none of its variables set: ``${VAR:-default}`` is the default."""
    return re.sub(r"\$\{\w+(?::-([^}]*))?\}", lambda m: m[1] or "", value)


def published(service: dict[str, Any]) -> list[tuple[str, int]]:
    """(host address, container port) of each published port; "" for every interface."""
    found = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            found.append((str(entry.get("host_ip", "")), int(entry["target"])))
            continue
        parts = interpolated(str(entry)).split("/")[0].split(":")
        found.append((parts[0] if len(parts) == 3 else "", int(parts[-1])))
    return found


def test_compose_publishes_only_the_gateway_and_its_grpc_api_only_over_tls(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for host, port in published(service):
            if host in ("127.0.0.1", "::1"):
                continue  # reachable from the Docker host only, for operations
            assert name == "gateway", f"{name} publishes {port} on every interface"

    gateway = {key: interpolated(value) for key, value in environment(services["gateway"]).items()}
    http = int(gateway["JJJ_GATEWAY_LISTEN"].rsplit(":", 1)[1])
    grpc = int(gateway["JJJ_GATEWAY_GRPC_LISTEN"].rsplit(":", 1)[1])
    assert {port for _, port in published(services["gateway"])} == {http, grpc}
    # The gRPC API the gateway serves with these settings: TLS, never plaintext.
    settings = GatewaySettings.from_env(gateway)
    assert settings.grpc_api_tls() is not None and not settings.grpc_plaintext
    assert "JJJ_GATEWAY_GRPC_PLAINTEXT" not in gateway
    without_certificate = {key: value for key, value in gateway.items() if "_TLS_" not in key}
    with pytest.raises(InvalidInput, match="in clear"):
        GatewaySettings.from_env(without_certificate)  # and the check above would notice


def test_compose_healthchecks_probe_the_health_endpoints(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        test = " ".join(service["healthcheck"]["test"])
        if service["image"].startswith("postgres:"):
            assert "pg_isready" in test, name
        elif name.startswith("node-"):
            port = environment(service)["JJJ_NODE_METRICS_LISTEN"].rsplit(":", 1)[1]
            assert f"http://127.0.0.1:{port}/healthz" in test and test.startswith("CMD python"), test
        else:
            port = environment(service)["JJJ_GATEWAY_LISTEN"].rsplit(":", 1)[1]
            assert f"http://127.0.0.1:{port}/healthz" in test and test.startswith("CMD python"), test


def test_compose_secrets_are_declared_and_mounted_where_the_settings_point(compose: dict[str, Any]) -> None:
    declared_secrets = compose["secrets"]
    declared_configs = compose.get("configs", {})
    secrets_dir = (DEPLOY / "secrets").resolve()
    for name, secret in {**declared_secrets, **declared_configs}.items():
        path = (DEPLOY / secret["file"]).resolve()
        assert path.is_relative_to(secrets_dir), f"{name}: {secret['file']} is outside deploy/secrets"

    for name, service in compose["services"].items():
        used_secrets = names(service.get("secrets", []))
        used_configs = names(service.get("configs", []))
        assert used_secrets <= set(declared_secrets), f"{name}: undeclared {used_secrets - set(declared_secrets)}"
        assert used_configs <= set(declared_configs), f"{name}: undeclared {used_configs - set(declared_configs)}"
        mounted = {f"/run/secrets/{secret}" for secret in used_secrets} | {
            entry["target"] for entry in service.get("configs", []) if isinstance(entry, dict)
        }
        for key, value in environment(service).items():
            if re.search(r"_(TLS_CERT|TLS_KEY|TLS_CA|KEYS_DIR|GATEWAY_JWKS)$", key):
                assert value in mounted, f"{name}: {key}={value} is not mounted"

    gateway = environment(compose["services"]["gateway"])
    assert gateway["JJJ_GATEWAY_KEYS_DIR"] == "/run/secrets/gateway-keys"
    for region in REGIONS:
        node = environment(compose["services"][f"node-{region}"])
        assert {node["JJJ_NODE_TLS_CERT"], node["JJJ_NODE_TLS_KEY"]} == {
            f"/run/secrets/node-{region}-cert",
            f"/run/secrets/node-{region}-key",
        }


def test_compose_builds_the_image_from_the_repository_root(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if service["image"].startswith("postgres:"):
            continue
        build = service["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context == ROOT, name
        assert (context / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_secrets_directory_keeps_generated_files_out_of_git() -> None:
    lines = (DEPLOY / "secrets" / ".gitignore").read_text(encoding="utf-8").splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"
    assert {"!README.md", "!.gitignore"} <= set(rules) and len([r for r in rules if r.startswith("!")]) == 2
    assert (DEPLOY / "secrets" / "README.md").read_text(encoding="utf-8").count("jjj certs init") >= 1


# --- Kubernetes -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl not installed: .ci/run installs it")
    return path


def render(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    docs = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    assert docs, f"{directory} renders nothing"
    return docs


@pytest.fixture(scope="module")
def overlays(kubectl: str) -> dict[str, list[dict[str, Any]]]:
    return {region: render(kubectl, K8S / "overlays" / region) for region in REGIONS}


def pods(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(workload name, pod template metadata, pod spec) of every Deployment and StatefulSet."""
    for doc in docs:
        if doc["kind"] in WORKLOADS:
            template = doc["spec"]["template"]
            yield doc["metadata"]["name"], template["metadata"], template["spec"]


def the(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def container_env(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The environment the container starts with: its ConfigMaps, then its own variables
    (a secret's value shown as ``<secret NAME/KEY>``); ``$(VAR)`` must name one set before."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(the(docs, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
    for item in container.get("env", []):
        if "value" in item:
            for ref in re.findall(r"\$\((\w+)\)", item["value"]):
                assert ref in env, f"{item['name']} refers to $({ref}) before it is set"
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = f"<secret {ref['name']}/{ref['key']}>"
    return env


def container(docs: list[dict[str, Any]], workload: str) -> dict[str, Any]:
    spec = next(spec for name, _, spec in pods(docs) if name == workload)
    containers: list[dict[str, Any]] = spec["containers"]
    assert len(containers) == 1
    return containers[0]


def test_base_renders_valid_manifests(kubectl: str) -> None:
    docs = render(kubectl, K8S / "base")
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        assert "namespace" not in doc["metadata"], "the base leaves the namespace to the overlays"
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in docs}
    assert {
        ("Deployment", "jjj-node"),
        ("Service", "jjj-node"),
        ("StatefulSet", "jjj-node-db"),
        ("Service", "jjj-node-db"),
        ("Deployment", "jjj-gateway"),
        ("Service", "jjj-gateway"),
        ("StatefulSet", "jjj-gateway-db"),
        ("Service", "jjj-gateway-db"),
        ("ConfigMap", "jjj-node-config"),
        ("ConfigMap", "jjj-gateway-config"),
    } <= kinds


def test_strict_validation_rejects_a_misspelt_field() -> None:
    # The check below is only worth something if the strict schemas refuse unknown fields.
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "dataa": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


@pytest.mark.parametrize("region", REGIONS)
def test_overlay_renders_valid_manifests_in_its_own_namespace(
    overlays: dict[str, list[dict[str, Any]]], region: str
) -> None:
    docs = overlays[region]
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        assert doc["metadata"].get("namespace") == f"jjj-{region}", f"{doc['kind']}/{doc['metadata']['name']}"
        assert doc["metadata"]["labels"]["jjj-credit/region"] == region
    for _, metadata, _ in pods(docs):
        assert metadata["labels"]["jjj-credit/region"] == region


def test_overlays_use_different_namespaces(overlays: dict[str, list[dict[str, Any]]]) -> None:
    namespaces = {region: {doc["metadata"]["namespace"] for doc in docs} for region, docs in overlays.items()}
    assert all(len(found) == 1 for found in namespaces.values()), namespaces
    assert len({found.pop() for found in namespaces.values()}) == len(REGIONS)


@pytest.mark.parametrize("region", REGIONS)
def test_overlay_containers_have_probes_limits_and_a_locked_down_context(
    overlays: dict[str, list[dict[str, Any]]], region: str
) -> None:
    checked = 0
    for workload, _, spec in pods(overlays[region]):
        assert spec["securityContext"]["runAsNonRoot"] is True, workload
        assert spec.get("automountServiceAccountToken") is False, workload
        for c in spec["containers"]:
            for probe in ("readinessProbe", "livenessProbe"):
                assert probe in c, f"{workload}/{c['name']} has no {probe}"
            assert set(c["resources"]) == {"requests", "limits"}, f"{workload}/{c['name']}"
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]) & set(c["resources"]["limits"])
            context = c["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"]
            assert context["readOnlyRootFilesystem"] is True, f"{workload}/{c['name']}"
            mounts = {mount["mountPath"] for mount in c.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{workload}/{c['name']}: a read-only root needs a writable /tmp"
            checked += 1
    assert checked == 4


def http_probe_port(c: dict[str, Any], probe: str) -> int:
    get = c[probe]["httpGet"]
    assert get["path"] == "/healthz"
    port = get["port"]
    if isinstance(port, str):
        port = next(p["containerPort"] for p in c["ports"] if p["name"] == port)
    return int(port)


@pytest.mark.parametrize("region", REGIONS)
def test_overlay_probes_ask_the_health_endpoints(overlays: dict[str, list[dict[str, Any]]], region: str) -> None:
    docs = overlays[region]
    node = container(docs, "jjj-node")
    gateway = container(docs, "jjj-gateway")
    for probe in ("readinessProbe", "livenessProbe"):
        assert http_probe_port(node, probe) == 9102
        assert http_probe_port(gateway, probe) == 8080
    assert container_env(docs, node)["JJJ_NODE_METRICS_LISTEN"] == "0.0.0.0:9102"
    assert container_env(docs, gateway)["JJJ_GATEWAY_LISTEN"] == "0.0.0.0:8080"
    assert {p["containerPort"] for p in node["ports"]} == {50051, 9102}
    assert {p["containerPort"] for p in gateway["ports"]} == {8080, 50060}
    for workload in ("jjj-node-db", "jjj-gateway-db"):
        assert "pg_isready" in container(docs, workload)["readinessProbe"]["exec"]["command"]


@pytest.mark.parametrize("region", REGIONS)
def test_overlay_sets_the_region_and_the_gateway_instance(
    overlays: dict[str, list[dict[str, Any]]], region: str
) -> None:
    docs = overlays[region]
    node = container_env(docs, container(docs, "jjj-node"))
    assert node["JJJ_NODE_REGION"] == region
    assert {item.split("=")[0] for item in node["JJJ_NODE_PEERS"].split(",")} == set(REGIONS) - {region}
    assert node["JJJ_NODE_DB_URL"] == "postgresql://jjj:$(JJJ_DB_PASSWORD)@jjj-node-db:5432/credit"
    assert node["JJJ_DB_PASSWORD"] == "<secret jjj-db/node-password>"

    gateway = container_env(docs, container(docs, "jjj-gateway"))
    assert gateway["JJJ_GATEWAY_ISSUER"] == f"jjj-gateway-{region}"
    assert region in gateway["JJJ_GATEWAY_PUBLIC_URL"] and gateway["JJJ_GATEWAY_PUBLIC_URL"].startswith("https://")
    assert gateway["JJJ_GATEWAY_DB_URL"] == "postgresql://jjj:$(JJJ_DB_PASSWORD)@jjj-gateway-db:5432/gateway"

    nodes = dict(item.split("=", 1) for item in gateway["JJJ_GATEWAY_NODES"].split(","))
    assert set(nodes) == set(REGIONS)
    services = {doc["metadata"]["name"] for doc in docs if doc["kind"] == "Service"}
    for other, address in nodes.items():
        host, port = address.rsplit(":", 1)
        assert port == "50051"
        if other == region:
            assert host in services, f"{region}'s own node must be its in-cluster Service, not {host}"
        else:
            assert host == f"node.{other}.jjj.example", host

    trusted = dict(item.split("=", 1) for item in gateway["JJJ_GATEWAY_TRUST"].split(","))
    assert set(trusted) == {f"jjj-gateway-{other}" for other in REGIONS if other != region}


def test_overlays_differ_only_where_regions_differ(overlays: dict[str, list[dict[str, Any]]]) -> None:
    issuers = {container_env(docs, container(docs, "jjj-gateway"))["JJJ_GATEWAY_ISSUER"] for docs in overlays.values()}
    urls = {container_env(docs, container(docs, "jjj-gateway"))["JJJ_GATEWAY_PUBLIC_URL"] for docs in overlays.values()}
    assert len(issuers) == len(urls) == len(REGIONS)


@pytest.mark.parametrize("region", REGIONS)
def test_overlay_mounts_every_file_its_settings_name(overlays: dict[str, list[dict[str, Any]]], region: str) -> None:
    docs = overlays[region]
    for workload in ("jjj-node", "jjj-gateway"):
        c = container(docs, workload)
        mounts = [PurePosixPath(mount["mountPath"]) for mount in c["volumeMounts"]]
        env = container_env(docs, c)
        paths = [
            part.split("=", 1)[-1]
            for key, value in env.items()
            if re.search(r"_(TLS_CERT|TLS_KEY|TLS_CA|KEYS_DIR|GATEWAY_JWKS|TRUST)$", key)
            for part in value.split(",")
        ]
        assert len(paths) >= 4, paths
        for path in paths:
            assert any(PurePosixPath(path).is_relative_to(mount) for mount in mounts), f"{workload}: {path}"


@pytest.mark.parametrize("region", REGIONS)
def test_overlay_refers_only_to_documented_secrets(overlays: dict[str, list[dict[str, Any]]], region: str) -> None:
    docs = overlays[region]
    secrets: set[str] = set()
    configmaps: set[str] = set()
    for _, _, spec in pods(docs):
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                secrets.add(volume["secret"]["secretName"])
            if "configMap" in volume:
                configmaps.add(volume["configMap"]["name"])
        for c in spec["containers"]:
            for item in c.get("env", []):
                if "valueFrom" in item:
                    secrets.add(item["valueFrom"]["secretKeyRef"]["name"])
    rendered = {doc["metadata"]["name"] for doc in docs if doc["kind"] == "ConfigMap"}
    assert secrets == OPERATOR_SECRETS
    assert configmaps - rendered == OPERATOR_CONFIGMAPS
    assert not any(doc["kind"] == "Secret" for doc in docs), "secrets are created by the operator, not kept here"

    guide = DOCS.read_text(encoding="utf-8")
    for name in secrets:
        assert f"create secret generic {name}" in guide, f"docs/deploy.md does not say how to create {name}"
    for name in OPERATOR_CONFIGMAPS:
        assert f"create configmap {name}" in guide, f"docs/deploy.md does not say how to create {name}"


@pytest.mark.parametrize("region", REGIONS)
def test_overlay_services_and_databases_fit_together(overlays: dict[str, list[dict[str, Any]]], region: str) -> None:
    docs = overlays[region]
    labels = {name: metadata["labels"] for name, metadata, _ in pods(docs)}
    for service in (doc for doc in docs if doc["kind"] == "Service"):
        selector = service["spec"]["selector"]
        chosen = [name for name, pod in labels.items() if selector.items() <= pod.items()]
        assert len(chosen) == 1, f"Service {service['metadata']['name']} selects {chosen}"

    for app, database, name in (("jjj-node", "jjj-node-db", "credit"), ("jjj-gateway", "jjj-gateway-db", "gateway")):
        statefulset = the(docs, "StatefulSet", database)
        assert statefulset["spec"]["serviceName"] == database
        assert the(docs, "Service", database)["spec"]["ports"][0]["port"] == 5432
        (claim,) = statefulset["spec"]["volumeClaimTemplates"]
        mounts = {m["name"]: m["mountPath"] for m in container(docs, database)["volumeMounts"]}
        assert mounts[claim["metadata"]["name"]] == "/var/lib/postgresql/data"
        postgres = container_env(docs, container(docs, database))
        assert postgres["POSTGRES_DB"] == name
        password = container_env(docs, container(docs, app))["JJJ_DB_PASSWORD"]
        assert postgres["POSTGRES_PASSWORD"] == password
        assert container(docs, database)["image"] == "postgres:16"


# What one process of the gateway may open at most: SQLAlchemy's pool of 5 and its
# overflow of 10 (infra.db.sync_engine), and the room PostgreSQL 16 keeps by default.
CONNECTIONS_PER_PROCESS = 15
POSTGRES_MAX_CONNECTIONS = 100
RESERVED = 10  # for the operator's psql, pg_dump and `jjj accounts`


@pytest.mark.parametrize("region", REGIONS)
def test_overlay_runs_the_gateway_as_replicas_of_workers_on_postgresql(
    overlays: dict[str, list[dict[str, Any]]], region: str
) -> None:
    docs = overlays[region]
    deployment = the(docs, "Deployment", "jjj-gateway")
    replicas = deployment["spec"]["replicas"]
    assert replicas == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0  # two serve through a rollout
    spread = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    (preferred,) = spread["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    selector = preferred["podAffinityTerm"]["labelSelector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()

    gateway = container(docs, "jjj-gateway")
    settings = GatewaySettings.from_env(container_env(docs, gateway))  # workers > 1 are refused on SQLite
    assert settings.workers == 2 and settings.db_url.startswith("postgresql://")
    assert int(gateway["resources"]["limits"]["cpu"]) >= settings.workers  # a core a worker
    assert replicas * settings.workers * CONNECTIONS_PER_PROCESS <= POSTGRES_MAX_CONNECTIONS - RESERVED


@pytest.mark.parametrize("region", REGIONS)
def test_overlay_publishes_only_the_nodes_grpc_port_and_only_to_the_other_regions(
    overlays: dict[str, list[dict[str, Any]]], region: str
) -> None:
    docs = overlays[region]
    outside = [doc for doc in docs if doc["kind"] == "Service" and doc["spec"].get("type", "ClusterIP") != "ClusterIP"]
    assert [doc["metadata"]["name"] for doc in outside] == ["jjj-node-external"]
    (external,) = outside
    assert [(p["port"], p["targetPort"]) for p in external["spec"]["ports"]] == [(50051, "grpc")]
    ranges = external["spec"]["loadBalancerSourceRanges"]
    assert ranges and not {"0.0.0.0/0", "::/0"} & set(ranges), ranges
    assert not any(doc["kind"] == "Ingress" for doc in docs), "the operator's Ingress publishes HTTP (docs/deploy.md)"

    node = container_env(docs, container(docs, "jjj-node"))
    assert NodeSettings.from_env(node).tls_files() is not None, "the node's published port without mTLS"
    gateway = GatewaySettings.from_env(container_env(docs, container(docs, "jjj-gateway")))
    assert gateway.grpc_api_tls() is not None and not gateway.grpc_plaintext


# --- systemd --------------------------------------------------------------------------


def test_systemd_node_example_serves_mutual_tls_and_keeps_metrics_local() -> None:
    lines = (DEPLOY / "node.env.example").read_text(encoding="utf-8").splitlines()
    env = dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    settings = NodeSettings.from_env(env)
    assert settings.listen.startswith("0.0.0.0:") and settings.tls_files() is not None
    assert settings.metrics_listen.startswith("127.0.0.1:")
    unit = (DEPLOY / "systemd" / "jjj-node@.service").read_text(encoding="utf-8")
    assert "EnvironmentFile=/etc/jjj/node-%i.env" in unit
