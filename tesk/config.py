"""Typed configuration: the `custom:` section of TESK's FOCA config.

Unknown keys are rejected so that a typo fails at start-up instead of being silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Organization(Section):
    name: str = "TESK"
    url: str = "https://github.com/elixir-cloud-aai/TESK"


class ServiceInfoConfig(Section):
    """GA4GH service-info 1.0 fields served at /service-info."""

    id: str = "org.ga4gh.tesk"
    name: str = "TESK"
    description: str = "GA4GH Task Execution Service for Kubernetes and single machines"
    organization: Organization = Organization()
    contactUrl: str | None = None
    documentationUrl: str | None = None
    environment: str | None = None
    version: str | None = None  # None: the installed TESK version
    storage: list[str] | None = None  # None: derived from the filer's configuration


class StoreConfig(Section):
    url: str | None = None  # None: SQLite file `tesk.db` in the data dir
    pool_size: int = Field(default=5, ge=1)


class RetryConfig(Section):
    attempts: int = Field(default=5, ge=1)
    initial_backoff_s: float = Field(default=0.5, ge=0)
    max_backoff_s: float = Field(default=30.0, ge=0)
    timeout_s: float = Field(default=60.0, gt=0)


class FilerConfig(Section):
    file_roots: list[Path] = Field(default_factory=list)  # where file:// URLs may point
    retry: RetryConfig = RetryConfig()
    chunk_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    s3: bool = True  # offer s3:// (endpoint and credentials from the standard AWS settings)
    ftp: bool = True
    http: bool = True


class LocalConfig(Section):
    runtime: Literal["auto", "docker", "podman", "bwrap"] = "auto"
    max_concurrent_tasks: int = Field(default=4, ge=1)
    network: Literal["default", "none"] = "default"
    executor_user: str | None = None  # uid[:gid] executors run as where the runtime allows it
    containers_conf: Path | None = None  # podman: CONTAINERS_CONF to use (None: podman's default)


class PreemptibleConfig(Section):
    """How `resources.preemptible: true` reaches the scheduler: where preemptible nodes are."""

    node_selector: dict[str, str] = Field(
        default_factory=dict
    )  # e.g. {"cloud.google.com/gke-spot": "true"}
    tolerations: list[dict[str, Any]] = Field(default_factory=list)  # for the taints of those nodes


class ExecutorPodConfig(Section):
    """Defaults of executor pods; a task's resources and backend_parameters come on top."""

    shell: str = (
        "/bin/sh"  # runs the command with stdout/stderr sent to files (every image needs it)
    )
    default_cpu_cores: float | None = Field(default=None, gt=0)  # when a task sets no cpu_cores
    default_ram_gb: float | None = Field(default=None, gt=0)  # when a task sets no ram_gb
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    gpu_resource: str = "nvidia.com/gpu"  # the extended resource a `gpu_count` parameter asks for
    zone_label: str = "topology.kubernetes.io/zone"  # node label matched against resources.zones
    # Secrets a task may name in its `image_pull_secret` backend parameter (empty: any name).
    allowed_image_pull_secrets: list[str] = Field(default_factory=list)


class KubernetesConfig(Section):
    namespace: str = "default"
    image: str = "tesk:latest"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    image_pull_secrets: list[str] = Field(
        default_factory=list
    )  # for the TESK image (taskmaster, filer)
    # Tells the tasks of several TESK deployments sharing a namespace apart (a label value).
    instance: str = Field(default="tesk", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    kubeconfig: Path | None = (
        None  # None: in-cluster credentials, else $KUBECONFIG / ~/.kube/config
    )
    taskmaster_service_account: str = "tesk-taskmaster"
    taskmaster_cpu: str = "100m"  # requests of the taskmaster container (no CPU limit)
    taskmaster_memory: str = "256Mi"  # request and limit of the taskmaster and filer containers
    storage_class: str | None = None
    volume_access_mode: Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany"] = (
        "ReadWriteOnce"
    )
    default_disk_gb: float = Field(default=1.0, gt=0)
    # Group that owns the task volume in filer and executor pods (pod securityContext.fsGroup), so
    # the filer (uid 10001 in TESK's image) and non-root executors can write to it; None: unset.
    volume_fs_group: int | None = Field(default=10001, ge=0)
    pending_timeout_s: int = Field(default=600, ge=1)
    ttl_seconds_after_finished: int = Field(default=3600, ge=0)
    resync_interval_s: float = Field(default=60.0, gt=0)  # full comparison of store and cluster
    # Executor pods run as this account (None: the namespace's default); they never mount its token.
    executor_service_account: str | None = None
    # Secrets given to filer pods only, never to executors: one whose keys become environment
    # variables (e.g. AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL), one holding a `.netrc` file (FTP/HTTP).
    filer_env_secret: str | None = None
    filer_netrc_secret: str | None = None
    # Mount filer.file_roots into filer pods from the node (hostPath): for file:// URLs on a file
    # system every node mounts at the same place (NFS, Lustre, a one-node cluster).
    file_roots_host_path: bool = False
    executor: ExecutorPodConfig = ExecutorPodConfig()
    preemptible: PreemptibleConfig = PreemptibleConfig()


class LimitsConfig(Section):
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    log_tail_bytes: int = Field(default=64 * 1024, ge=0)
    max_executors: int = Field(default=100, ge=1)
    max_inputs: int = Field(default=10_000, ge=0)
    max_outputs: int = Field(default=10_000, ge=0)
    max_tags: int = Field(default=100, ge=0)


class LoggingConfig(Section):
    format: Literal["text", "json"] = "text"  # json: one JSON object per line
    requests: bool = True  # one line per API request (probes and /metrics at DEBUG)


class MetricsConfig(Section):
    enabled: bool = True  # serve Prometheus metrics at /metrics


class CustomConfig(Section):
    data_dir: Path = Path(".tesk")
    backend: Literal["local", "kubernetes"] = "local"
    store: StoreConfig = StoreConfig()
    local: LocalConfig = LocalConfig()
    kubernetes: KubernetesConfig = KubernetesConfig()
    filer: FilerConfig = FilerConfig()
    limits: LimitsConfig = LimitsConfig()
    service_info: ServiceInfoConfig = ServiceInfoConfig()
    logging: LoggingConfig = LoggingConfig()
    metrics: MetricsConfig = MetricsConfig()
