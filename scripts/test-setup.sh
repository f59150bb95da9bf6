#!/usr/bin/env bash
# Installs the system packages the tests use when they are missing (needs root for apt-get) and
# starts the servers the tests need on 127.0.0.1. Writes the settings for pytest to
# .cache/test-env.sh. Safe to run again: it only does what is not done yet. With --bench, also
# what the benchmarks use (wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache
env_file=.cache/test-env.sh
: >"$env_file"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }

missing=()
command -v bwrap >/dev/null || missing+=(bubblewrap)
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v busybox >/dev/null || [ -x /bin/busybox ] || missing+=(busybox-static)
command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
# The test cluster's node (tests/k8s/cluster): pod networking, kube-proxy, TESK's image base.
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
command -v iptables >/dev/null || missing+=(iptables)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
command -v go >/dev/null || missing+=(golang-go)
if [ "${1:-}" = --bench ]; then command -v wrk >/dev/null || missing+=(wrk); fi
if ((${#missing[@]})); then
  echo "test-setup: installing ${missing[*]}"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
    as_root apt-get update -qq >/dev/null 2>&1 || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
      echo "test-setup: could not install ${missing[*]}; tests that need them are skipped"
  fi
fi

for script in scripts/test-setup.d/*.sh; do
  [ -e "$script" ] || continue
  # shellcheck source=/dev/null
  . "$script"
done

# boto3 with no endpoint would contact AWS and the cloud metadata address: point it at a closed
# loopback port unless a test starts its own S3 server (moto) and says so.
cat >>"$env_file" <<EOT
export AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL=\${AWS_ENDPOINT_URL:-http://127.0.0.1:9}
EOT
echo "test-setup: done"
