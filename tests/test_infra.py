"""The scale-out files are checked, not just written: infra/compose.yaml, the Helm values for the official Airflow
chart and the Spark-on-Kubernetes profile (infra/k8s.yaml). Parsed with PyYAML and jsonschema; nothing is started.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tomllib
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from jobs.core.settings import INFRA_DIR, REPO_ROOT, Settings

COMPOSE = yaml.safe_load((INFRA_DIR / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
HELM = yaml.safe_load((INFRA_DIR / "helm" / "airflow-values.yaml").read_text())
HELM_SCHEMA = json.loads((INFRA_DIR / "helm" / "airflow-values.subset.schema.json").read_text())
PROJECT_VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
# KTREC_* variables that are not settings: read by infra/airflow.sh, or by jobs/nightly/worker.py (hostname).
NOT_SETTINGS = {"KTREC_CELERY_WORKERS", "KTREC_CELERY_CONCURRENCY", "KTREC_GPU_POOL_SLOTS", "KTREC_WORKER_NAME"}


def env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return dict(pairs)


SERVERS_ENV = env_file(INFRA_DIR / "airflow-servers.env")
CELERY_ENV = env_file(INFRA_DIR / "airflow-celery.env")
QUEUES = dict(spec.split("=", 1) for spec in CELERY_ENV["KTREC_CELERY_WORKERS"].split())  # worker name -> queues


def effective_env(service: dict) -> dict[str, str]:
    """What the container sees: env_file entries in order, then `environment` (compose's precedence)."""
    env: dict[str, str] = {}
    for name in service.get("env_file", []):
        env |= env_file(INFRA_DIR / name)
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "use the mapping form of environment"
    return env | {k: str(v) for k, v in environment.items()}


def ktrec_services() -> dict[str, dict]:
    return {name: s for name, s in SERVICES.items() if s.get("image", "").startswith("ktrec-airflow:")}


def airflow_services() -> dict[str, dict]:
    return {name: s for name, s in ktrec_services().items() if "env_file" in s}


def celery_workers() -> dict[str, list[str]]:
    return {name: s["command"] for name, s in airflow_services().items() if s["command"][:2] == ["celery", "worker"]}


def option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def image_tag(image: str) -> str:
    repo, _, tag = image.rpartition(":")
    assert repo and "/" not in tag, f"{image}: no explicit tag"
    return tag


def check_settings_env(env: dict[str, str], monkeypatch) -> None:
    """Build a Settings from the KTREC_* entries of ``env`` alone; each must name a settings field and arrive."""
    ktrec = {k: v for k, v in env.items() if k.startswith("KTREC_") and k not in NOT_SETTINGS}
    assert ktrec, "no KTREC_* settings"
    for key in [k for k in os.environ if k.startswith("KTREC_")]:
        monkeypatch.delenv(key)
    for key, value in ktrec.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    for key, raw in ktrec.items():
        node = settings
        for part in key.removeprefix("KTREC_").split("__"):
            if isinstance(node, dict):  # a mapping such as spark.conf: pydantic lowercases nested env keys
                assert part == part.lower(), f"{key}: {part!r} would arrive lowercased; use the JSON form"
                node = node[part]
                continue
            assert part.lower() in type(node).model_fields, f"{key}: {part.lower()!r} is not a settings field"
            node = getattr(node, part.lower())
        if isinstance(node, dict):
            assert json.loads(raw).items() <= node.items(), key
        elif isinstance(node, bool):
            assert str(node).lower() == raw.lower(), key
        elif isinstance(node, Path):
            assert node == Path(raw), key
        else:
            assert str(node) == raw, key


def same_url_but_host(expected: str, actual: str) -> str:
    """Scheme, user, port and path equal; returns the actual host (checked by the caller)."""
    want, got = urlsplit(expected), urlsplit(actual)
    assert (got.scheme, got.username, got.port, got.path) == (want.scheme, want.username, want.port, want.path), (
        f"{actual} differs from {expected} beyond the host"
    )
    return got.hostname


# --- compose -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_compose_ports_bind_to_loopback_only(name):
    service = SERVICES[name]
    assert service.get("network_mode") != "host", name
    for port in service.get("ports", []):
        if isinstance(port, dict):
            assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
        else:
            assert re.fullmatch(r"127\.0\.0\.1:\d+:\d+(/tcp|/udp)?", str(port)), f"{name}: {port} is not loopback-only"


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_compose_images_are_pinned(name):
    service = SERVICES[name]
    assert "image" in service, f"{name}: untagged (build without image:)"
    tag = image_tag(service["image"])
    assert tag != "latest" and tag, f"{name}: {service['image']}"
    if "build" in service:
        assert tag == PROJECT_VERSION, f"{name}: the ktrec image is tagged with pyproject's version"
    if service["image"].startswith("apache/spark:"):
        assert tag.startswith(version("pyspark")), "the Spark cluster must run the driver's pyspark version"


def test_dockerfile_base_is_pinned_to_the_installed_airflow():
    bases = re.findall(r"^FROM\s+(\S+)", (INFRA_DIR / "Dockerfile").read_text(), flags=re.M)
    assert bases
    for base in bases:
        tag = image_tag(base)
        assert tag != "latest" and tag.startswith(version("apache-airflow") + "-python3.11"), base


def test_compose_has_every_server_of_the_servers_profile():
    assert {"postgres", "redis", "mlflow", "spark-master"} <= SERVICES.keys()
    worker = "deploy.worker.Worker spark://spark-master:7077"
    workers = [s for s in SERVICES.values() if worker in str(s.get("command"))]
    assert len(workers) >= 2, "Spark master + 2 workers"
    mlflow = " ".join(SERVICES["mlflow"]["command"].split())
    assert "--backend-store-uri postgresql://postgres@postgres:5432/" in mlflow
    artifacts = option(mlflow.split(), "--artifacts-destination")
    assert any(v.endswith(f":{artifacts}") for v in SERVICES["mlflow"]["volumes"]), "artifacts on a volume"
    commands = {s["command"][0] for s in airflow_services().values()}
    assert {"api-server", "scheduler", "dag-processor", "celery"} <= commands
    assert "vllm" in SERVICES and SERVICES["vllm"].get("profiles") == ["gpu"], "vllm optional (--profile gpu)"


def test_compose_runs_one_celery_worker_per_queue_of_the_celery_env():
    workers = celery_workers()
    queues = sorted(option(cmd, "--queues") for cmd in workers.values())
    assert queues == sorted(QUEUES.values())
    for name, cmd in workers.items():
        worker = effective_env(SERVICES[name])["KTREC_WORKER_NAME"]
        assert option(cmd, "--queues") == QUEUES[worker], name
        assert option(cmd, "--concurrency") == CELERY_ENV["KTREC_CELERY_CONCURRENCY"], name


@pytest.mark.parametrize("name", sorted(airflow_services()))
def test_compose_airflow_uses_the_celery_env_settings(name):
    env = effective_env(SERVICES[name])
    assert env["AIRFLOW__CORE__EXECUTOR"] == CELERY_ENV["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert same_url_but_host(CELERY_ENV["AIRFLOW__CELERY__BROKER_URL"], env["AIRFLOW__CELERY__BROKER_URL"]) in SERVICES
    metadata = SERVERS_ENV["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert same_url_but_host(metadata, env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]) in SERVICES
    # infra/airflow.sh: the result backend is the metadata database with its driver, prefixed db+.
    backend = "db+" + metadata
    assert same_url_but_host(backend, env["AIRFLOW__CELERY__RESULT_BACKEND"]) in SERVICES


@pytest.mark.parametrize("name", sorted(ktrec_services()))
def test_compose_ktrec_env_builds_settings(name, monkeypatch):
    env = effective_env(SERVICES[name])
    if any(k.startswith("KTREC_") and k not in NOT_SETTINGS for k in env):
        check_settings_env(env, monkeypatch)


# --- Helm values for the Apache Airflow chart ----------------------------------------------------------------


def test_helm_values_match_the_schema_subset():
    jsonschema.Draft202012Validator.check_schema(HELM_SCHEMA)
    jsonschema.validate(HELM, HELM_SCHEMA, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda v: v.update(exector="CeleryExecutor"),
        lambda v: v["workers"]["celery"]["sets"][0].update(queues="gpu"),
        lambda v: v["workers"].update(queue="gpu"),
        lambda v: v["data"]["metadataConnection"].update(database="ktrec_airflow"),
        lambda v: v["workers"]["celery"]["sets"][0]["resources"].update(request={"cpu": "1"}),
        lambda v: v.update(executor="LocalExecutor"),
    ],
    ids=["typo-top-level", "set-queues", "queue-misplaced", "metadata-key", "resources-key", "not-celery"],
)
def test_helm_schema_rejects_a_wrong_key(mutate):
    values = copy.deepcopy(HELM)
    mutate(values)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(values, HELM_SCHEMA, cls=jsonschema.Draft202012Validator)


def test_helm_values_match_the_celery_env():
    celery = HELM["workers"]["celery"]
    assert HELM["executor"] == CELERY_ENV["AIRFLOW__CORE__EXECUTOR"]
    queues = [celery["queue"]] * celery["enableDefault"] + [s["queue"] for s in celery["sets"]]
    assert sorted(queues) == sorted(QUEUES.values())
    gpu = next(s for s in celery["sets"] if s["queue"] == "gpu")
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] >= 1 and gpu["nodeSelector"]
    same_url_but_host(CELERY_ENV["AIRFLOW__CELERY__BROKER_URL"], HELM["data"]["brokerUrl"])
    assert HELM["data"]["metadataConnection"]["db"] == SERVERS_ENV["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].split("/")[-1]
    assert HELM["config"]["celery"]["worker_concurrency"] == int(CELERY_ENV["KTREC_CELERY_CONCURRENCY"])
    assert HELM["airflowVersion"] == version("apache-airflow")
    assert HELM["defaultAirflowTag"] == PROJECT_VERSION


def test_helm_ktrec_env_builds_settings(monkeypatch):
    env = {e["name"]: e["value"] for e in HELM["env"]}
    env |= {e["name"]: e["value"] for e in yaml.safe_load(HELM["extraEnv"]) if "value" in e}
    check_settings_env(env, monkeypatch)


# --- Spark on Kubernetes (infra/k8s.yaml) ----------------------------------------------------------------------


def k8s_settings(monkeypatch, **env: str) -> Settings:
    for key in [k for k in os.environ if k.startswith("KTREC_")]:
        monkeypatch.delenv(key)
    for key, value in {"KTREC_PROFILE": "k8s", **env}.items():
        monkeypatch.setenv(key, value)
    return Settings()


def test_spark_k8s_profile_loads_into_settings(monkeypatch):
    spark = k8s_settings(monkeypatch).spark
    raw = yaml.safe_load((INFRA_DIR / "k8s.yaml").read_text())["spark"]["conf"]
    assert spark.master.startswith("k8s://https://")
    assert spark.conf == {k: str(v) for k, v in raw.items()}
    assert all(key.startswith("spark.") for key in spark.conf), "every key is a Spark option"
    for key in ("spark.kubernetes.container.image", "spark.kubernetes.namespace", "spark.executor.instances",
                "spark.executor.cores", "spark.executor.memory",
                "spark.kubernetes.authenticate.driver.serviceAccountName"):
        assert spark.conf.get(key), key
    assert int(spark.conf["spark.executor.instances"]) >= 1 and int(spark.conf["spark.executor.cores"]) >= 1
    tag = image_tag(spark.conf["spark.kubernetes.container.image"])
    assert tag != "latest" and tag.startswith(version("pyspark"))


def test_helm_driver_host_merges_into_the_k8s_spark_conf(monkeypatch):
    extra = {e["name"]: e.get("value") for e in yaml.safe_load(HELM["extraEnv"])}
    conf = k8s_settings(monkeypatch, KTREC_SPARK__CONF=extra["KTREC_SPARK__CONF"]).spark.conf
    assert conf["spark.driver.host"] == "$(POD_IP)"  # Kubernetes expands it in the pod
    assert conf["spark.kubernetes.namespace"] == "ktrec", "the profile's options are kept"


@pytest.mark.parametrize("profile", ["local", "servers", "k8s"])
def test_profile_keys_are_settings_fields(profile):
    def walk(model: type, data: dict, where: str) -> None:
        for key, value in data.items():
            assert key in model.model_fields, f"infra/{profile}.yaml: {where}{key} is not a settings field"
            annotation = model.model_fields[key].annotation
            if isinstance(value, dict) and isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                walk(annotation, value, f"{where}{key}.")

    walk(Settings, yaml.safe_load((INFRA_DIR / f"{profile}.yaml").read_text()), "")
