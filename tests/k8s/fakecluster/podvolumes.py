"""A pod's volumes and API credentials as host paths the sandbox binds."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from .auth import Tokens
from .meta import Obj, dig
from .podenv import field_value
from .resources import BY_PLURAL
from .runner import Mount
from .store import Store
from .volumes import VolumeBinder

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
KUBECONFIG_DIR = "/var/run/secrets/fakecluster"
_ALWAYS_READ_ONLY = ("configMap", "secret", "projected", "downwardAPI")


class MountError(Exception):
    """A volume cannot be set up yet (FailedMount); the kubelet tries again."""


class PodVolumes:
    """Sets up one pod's volumes under its directory. `Mount.container_path` is left empty:
    each volumeMount says where a volume goes."""

    def __init__(
        self, store: Store, pod: Obj, pod_dir: Path, binder: VolumeBinder, tokens: Tokens
    ) -> None:
        self.store = store
        self.pod = pod
        self.namespace: str = pod["metadata"]["namespace"]
        self.dir = pod_dir
        self.binder = binder
        self.tokens = tokens

    def mount_all(self) -> dict[str, Mount | None]:
        mounts: dict[str, Mount | None] = {}
        for volume in self.pod["spec"].get("volumes") or []:
            name = volume["name"]
            target = self.dir / "volumes" / name
            read_only = any(source in volume for source in _ALWAYS_READ_ONLY)
            if "persistentVolumeClaim" in volume:
                claim_name = volume["persistentVolumeClaim"]["claimName"]
                claim = self.store.try_get(
                    BY_PLURAL["persistentvolumeclaims"], self.namespace, claim_name
                )
                if claim is None or dig(claim, "status", "phase") != "Bound":
                    raise MountError(
                        f'MountVolume.SetUp failed for volume "{name}" : persistentvolumeclaim '
                        f'"{claim_name}" is not bound'
                    )
                path = self.binder.path_for(claim)
                path.mkdir(parents=True, exist_ok=True)
                mounts[name] = Mount(
                    str(path), "", bool(volume["persistentVolumeClaim"].get("readOnly"))
                )
            elif "configMap" in volume or "secret" in volume:
                self._write_config_volume(volume, target)
                mounts[name] = Mount(str(target), "", True)
            elif "emptyDir" in volume:
                target.mkdir(parents=True, exist_ok=True)
                target.chmod(0o777)
                mounts[name] = Mount(str(target), "", False)
            elif "hostPath" in volume:
                path = Path(volume["hostPath"]["path"])
                if volume["hostPath"].get("type") in ("DirectoryOrCreate",) and not path.exists():
                    path.mkdir(parents=True, exist_ok=True)
                if not path.exists():
                    raise MountError(
                        f'MountVolume.SetUp failed for volume "{name}" : hostPath {path} does not '
                        "exist"
                    )
                mounts[name] = Mount(str(path), "", False)
            elif "downwardAPI" in volume or "projected" in volume:
                self._write_projected_volume(volume, target)
                mounts[name] = Mount(str(target), "", read_only)
            else:
                kind = next((k for k in volume if k != "name"), "unknown")
                raise MountError(
                    f'MountVolume.SetUp failed for volume "{name}" : the fake kubelet does not '
                    f"support {kind} volumes"
                )
        return mounts

    def _write_config_volume(self, volume: Obj, target: Path) -> None:
        is_secret = "secret" in volume
        source = volume["secret" if is_secret else "configMap"]
        ref_name = source.get("secretName" if is_secret else "name", "")
        plural = "secrets" if is_secret else "configmaps"
        obj = self.store.try_get(BY_PLURAL[plural], self.namespace, ref_name)
        if obj is None:
            if source.get("optional"):
                target.mkdir(parents=True, exist_ok=True)
                return
            kind = "secret" if is_secret else "configmap"
            raise MountError(
                f'MountVolume.SetUp failed for volume "{volume["name"]}" : {kind} "{ref_name}" '
                "not found"
            )
        files = _config_files(obj, is_secret)
        _write_items(
            target,
            files,
            source.get("items"),
            source.get("defaultMode", 0o644),
            optional=bool(source.get("optional")),
            volume=volume["name"],
        )

    def _write_projected_volume(self, volume: Obj, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        sources = (volume.get("projected") or {}).get("sources") or []
        if "downwardAPI" in volume:
            sources = [{"downwardAPI": volume["downwardAPI"]}]
        for source in sources:
            if "downwardAPI" in source:
                for item in source["downwardAPI"].get("items") or []:
                    if "fieldRef" in item:
                        value = field_value(self.pod, item["fieldRef"].get("fieldPath", ""))
                        write_file(target / item["path"], (value or "").encode(), 0o644)
            elif "configMap" in source or "secret" in source:
                is_secret = "secret" in source
                ref = source["secret" if is_secret else "configMap"]
                plural = "secrets" if is_secret else "configmaps"
                obj = self.store.try_get(BY_PLURAL[plural], self.namespace, ref.get("name", ""))
                if obj is None:
                    if ref.get("optional"):
                        continue
                    raise MountError(
                        f'MountVolume.SetUp failed for volume "{volume["name"]}" : '
                        f'{"secret" if is_secret else "configmap"} "{ref.get("name")}" not found'
                    )
                _write_items(
                    target,
                    _config_files(obj, is_secret),
                    ref.get("items"),
                    0o644,
                    optional=bool(ref.get("optional")),
                    volume=volume["name"],
                )
            elif "serviceAccountToken" in source:
                token = self.tokens.for_service_account(
                    self.namespace, self.pod["spec"].get("serviceAccountName", "default")
                )
                write_file(
                    target / source["serviceAccountToken"].get("path", "token"),
                    token.encode(),
                    0o644,
                )

    def automount(self) -> bool:
        spec = self.pod["spec"]
        if spec.get("automountServiceAccountToken") is not None:
            return bool(spec["automountServiceAccountToken"])
        account = self.store.try_get(
            BY_PLURAL["serviceaccounts"], self.namespace, spec.get("serviceAccountName", "default")
        )
        if account is not None and account.get("automountServiceAccountToken") is not None:
            return bool(account["automountServiceAccountToken"])
        return True

    def credentials(
        self, api_url: str, in_cluster_port: int | None, ca_certificate: bytes
    ) -> list[Mount]:
        """The pod's API credentials: the service account directory a pod gets (token,
        namespace, ca.crt) and, unless in-cluster mode serves TLS, a kubeconfig for the fake
        API server."""
        account_dir = self.dir / "serviceaccount"
        kube_dir = self.dir / "kubeconfig"
        if not account_dir.exists():
            account = self.pod["spec"].get("serviceAccountName", "default")
            token = self.tokens.for_service_account(self.namespace, account)
            account_dir.mkdir(parents=True)
            write_file(account_dir / "token", token.encode(), 0o644)
            write_file(account_dir / "namespace", self.namespace.encode(), 0o644)
            write_file(account_dir / "ca.crt", ca_certificate, 0o644)
            kube_dir.mkdir(parents=True)
            config = kubeconfig(
                api_url,
                token,
                self.namespace,
                user=f"system:serviceaccount:{self.namespace}:{account}",
            )
            write_file(kube_dir / "kubeconfig", config.encode(), 0o644)
        mounts = [Mount(str(account_dir), SERVICE_ACCOUNT_DIR, True)]
        if in_cluster_port is None:
            mounts.append(Mount(str(kube_dir), KUBECONFIG_DIR, True))
        return mounts


def _config_files(obj: Obj, is_secret: bool) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for key, value in (obj.get("data") or {}).items():
        files[key] = base64.b64decode(value) if is_secret else value.encode()
    for key, value in (obj.get("binaryData") or {}).items():
        files[key] = base64.b64decode(value)
    return files


def _write_items(
    target: Path,
    files: dict[str, bytes],
    items: list[Obj] | None,
    mode: int,
    *,
    optional: bool,
    volume: str,
) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if items:
        for item in items:
            key = item.get("key", "")
            if key not in files:
                if optional:
                    continue
                raise MountError(
                    f'MountVolume.SetUp failed for volume "{volume}" : configmap references '
                    f"non-existent config key: {key}"
                )
            write_file(target / str(item.get("path") or key), files[key], item.get("mode", mode))
    else:
        for key, content in files.items():
            write_file(target / key, content, mode)


def write_file(path: Path, content: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(mode)


def kubeconfig(server: str, token: str, namespace: str, *, user: str) -> str:
    """A kubeconfig for the fake API server (plain HTTP on loopback, bearer token)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fakecluster", "cluster": {"server": server}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {
                "name": "fakecluster",
                "context": {"cluster": "fakecluster", "user": user, "namespace": namespace},
            }
        ],
        "current-context": "fakecluster",
    }
    return yaml.safe_dump(config, sort_keys=False)
