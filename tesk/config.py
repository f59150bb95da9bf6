"""Typed configuration: the `custom:` section of TESK's FOCA config.

Unknown keys are rejected so that a typo fails at start-up instead of being silently ignored.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
    # How SQLite commits: FULL syncs the WAL at every commit, so a task CreateTask answered 200
    # for survives a power loss; NORMAL syncs at checkpoints only (it survives a crash of TESK,
    # not of the machine). docs/performance.md measures both.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"


class RetryConfig(Section):
    attempts: int = Field(default=5, ge=1)
    initial_backoff_s: float = Field(default=0.5, ge=0)
    max_backoff_s: float = Field(default=30.0, ge=0)
    timeout_s: float = Field(default=60.0, gt=0)


# Cloud metadata services (credentials of the machine TESK runs on) and the rest of link-local.
DEFAULT_BLOCKED_NETWORKS: tuple[str, ...] = (
    "169.254.0.0/16",  # IPv4 link-local: AWS, GCP, Azure, OpenStack metadata at 169.254.169.254
    "fe80::/10",  # IPv6 link-local
    "fd00:ec2::254/128",  # AWS metadata over IPv6
    "100.100.100.200/32",  # Alibaba Cloud metadata
)


class FilerConfig(Section):
    file_roots: list[Path] = Field(default_factory=list)  # where file:// URLs may point
    # Input and output URLs whose host is in one of these networks are refused (empty: none).
    blocked_networks: list[IPv4Network | IPv6Network] = Field(
        default_factory=lambda: [ip_network(n) for n in DEFAULT_BLOCKED_NETWORKS]
    )
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
    # Executors run as this user and group, non-root, as Pod Security `restricted` requires; None:
    # as the image says (often root), which only a namespace allowing root (`baseline`) admits.
    run_as_user: int | None = Field(default=10001, ge=1)
    run_as_group: int | None = Field(default=10001, ge=0)


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
    # User and group of TESK's own pods (taskmaster, filer): the TESK image's non-root user.
    run_as_user: int = Field(default=10001, ge=1)
    run_as_group: int = Field(default=10001, ge=0)
    taskmaster_cpu: str = "100m"  # requests of the taskmaster container (no CPU limit)
    taskmaster_memory: str = "256Mi"  # request and limit of the taskmaster and filer containers
    storage_class: str | None = None
    volume_access_mode: Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany"] = (
        "ReadWriteOnce"
    )
    default_disk_gb: float = Field(default=1.0, gt=0)
    # Group that owns the task volume in filer and executor pods (pod securityContext.fsGroup, with
    # fsGroupChangePolicy OnRootMismatch), so the filer and non-root executors can write to it;
    # None: unset. Volumes whose driver skips fsGroup (ReadWriteMany, no fsType) need a root that
    # run_as_user may write to: the filer says so when it cannot.
    volume_fs_group: int | None = Field(default=10001, ge=0)
    pending_timeout_s: int = Field(default=600, ge=1)
    # How long a cancelled task's Job may wait for its pods to end before it is let go (pods on
    # a node that stopped answering never end until the node returns or is removed).
    cancel_timeout_s: int = Field(default=120, ge=1)
    ttl_seconds_after_finished: int = Field(default=3600, ge=0)
    resync_interval_s: float = Field(default=60.0, gt=0)  # full comparison of store and cluster
    # At most this many tasks INITIALIZING or RUNNING at once; the rest wait QUEUED in TESK's queue
    # and start in fair order across owners (tesk/store/fair.py). None: every task's Job is created
    # at submit, and the cluster's scheduler decides when it runs.
    max_running_tasks: int | None = Field(default=None, ge=1)
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
    # Nesting depth of a request body (a TES task needs about 5 levels).
    max_json_depth: int = Field(default=32, ge=8, le=512)
    # Inline input `content` (TES asks services to take at least 128 KiB), UTF-8 bytes.
    max_content_bytes: int = Field(default=1024 * 1024, ge=128 * 1024)
    # Task names and tags are indexed; PostgreSQL refuses index entries over ~2.7 KB.
    max_name_bytes: int = Field(default=1024, ge=16, le=2048)
    max_tag_key_bytes: int = Field(default=256, ge=16, le=512)
    max_tag_value_bytes: int = Field(default=1024, ge=16, le=1536)
    # How long each executor may run when its task sets no backend parameter
    # max_runtime_seconds; none: as long as it takes.
    max_runtime_seconds: int | None = Field(default=None, ge=1, le=10**9)


class OidcConfig(Section):
    """Bearer JWTs of one OpenID Connect issuer (discovery, JWKS, signature, iss, aud, exp)."""

    issuer: str | None = None  # the `iss` of accepted tokens; discovery document under it
    audience: list[str] = Field(default_factory=list)  # accepted `aud` values (one must match)
    identity_claim: str = "sub"  # the caller's identity, stored as the owner of their tasks
    # Dotted path of the claim listing the caller's groups or roles (Keycloak:
    # `realm_access.roles`; LS Login: `eduperson_entitlement`).
    groups_claim: str = "groups"
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256"], min_length=1)
    # Accept only access tokens typed `at+jwt` (RFC 9068); many issuers type them `JWT`.
    require_access_token_type: bool = False
    cache_ttl_s: float = Field(default=300, ge=0)  # how long discovery and JWKS are cached
    timeout_s: float = Field(default=10, gt=0)  # requests to the issuer


class AuthConfig(Section):
    """Who may call the TES API. service-info, /healthz and /readyz stay open in every mode."""

    # none: no authentication (every caller sees every task; for a local, loopback-only TESK);
    # basic: HTTP Basic with the users of `users_file`; oidc: bearer JWTs of `oidc.issuer`.
    mode: Literal["none", "basic", "oidc"] = "none"
    users_file: Path | None = None  # basic: `name:argon2-hash[:group,...]` lines (`tesk user`)
    # Callers in this group (basic: users file; oidc: `oidc.groups_claim`) see every task.
    admin_group: str | None = None
    # Show the owner of a task in its TaskLog.metadata (`owner`) to those who may see the task.
    identity_in_metadata: bool = False
    oidc: OidcConfig = OidcConfig()

    @model_validator(mode="after")
    def _complete_for_mode(self) -> Self:
        if self.mode == "basic" and self.users_file is None:
            raise ValueError("mode 'basic' needs users_file")
        if self.mode == "oidc" and (not self.oidc.issuer or not self.oidc.audience):
            raise ValueError("mode 'oidc' needs oidc.issuer and oidc.audience")
        return self


class LoggingConfig(Section):
    format: Literal["text", "json"] = "text"  # json: one JSON object per line
    requests: bool = True  # one line per API request (probes and /metrics at DEBUG)


class MetricsConfig(Section):
    enabled: bool = True  # serve Prometheus metrics at /metrics


class QuotasConfig(Section):
    """How many tasks CreateTask takes (unset: no limit); over a quota it answers 429."""

    # Tasks of one owner that are QUEUED, INITIALIZING, RUNNING or CANCELING.
    max_active_tasks_per_owner: int | None = Field(default=None, ge=1)
    # Tasks QUEUED, of every owner.
    max_queued_tasks: int | None = Field(default=None, ge=1)
    # max_active_tasks_per_owner for the members of a group (the largest of their groups wins)
    # and for single users (wins over their groups).
    groups: dict[str, int] = Field(default_factory=dict)
    users: dict[str, int] = Field(default_factory=dict)
    admins_exempt: bool = True
    retry_after_s: int = Field(default=30, ge=1)


class PricesConfig(Section):
    """What an hour of each resource costs, for `usage.cost_usd` in every task's log (unset: no
    cost is reported)."""

    core_hour_usd: float | None = Field(default=None, ge=0)
    ram_gb_hour_usd: float | None = Field(default=None, ge=0)
    disk_gb_hour_usd: float | None = Field(default=None, ge=0)


class RetriesConfig(Section):
    """How often a task whose attempt lost its capacity is run again (docs/retries.md)."""

    # Attempts a task gets at most, the first included (1: none is retried); a task may ask for
    # fewer with the backend parameter max_attempts.
    max_attempts: int = Field(default=3, ge=1, le=100)
    # Also retry attempts that could not be run at all (SYSTEM_ERROR from the runtime or the
    # infrastructure, such as a failed taskmaster pod); user command failures never are.
    system_errors: bool = False


class UsageConfig(Section):
    prices: PricesConfig = PricesConfig()


class StreamsConfig(Section):
    """Live logs and events: each follower holds a thread of its API worker, asleep between checks,
    beside (never instead of) the threads that answer the other requests."""

    max_per_worker: int = Field(default=256, ge=0)  # followers at once per API worker (then 503)
    poll_interval_s: float = Field(default=0.5, gt=0, le=60)  # how often a follower looks again
    keepalive_s: float = Field(default=15.0, gt=0)  # an idle stream sends a comment this often
    retry_after_s: int = Field(default=5, ge=1)  # Retry-After of the 503 when every slot is taken


class CustomConfig(Section):
    data_dir: Path = Path(".tesk")
    backend: Literal["local", "kubernetes"] = "local"
    store: StoreConfig = StoreConfig()
    local: LocalConfig = LocalConfig()
    kubernetes: KubernetesConfig = KubernetesConfig()
    filer: FilerConfig = FilerConfig()
    limits: LimitsConfig = LimitsConfig()
    usage: UsageConfig = UsageConfig()
    retries: RetriesConfig = RetriesConfig()
    quotas: QuotasConfig = QuotasConfig()
    streams: StreamsConfig = StreamsConfig()
    auth: AuthConfig = AuthConfig()
    service_info: ServiceInfoConfig = ServiceInfoConfig()
    logging: LoggingConfig = LoggingConfig()
    metrics: MetricsConfig = MetricsConfig()
