#!/usr/bin/env bash
# `make run` needs a local runtime for executors. When none is there (a Docker engine that answers,
# podman, or bubblewrap), install bubblewrap, the lightest one, if this user may use apt-get.
set -euo pipefail
if { command -v docker >/dev/null && docker info >/dev/null 2>&1; } ||
  command -v podman >/dev/null || command -v bwrap >/dev/null; then
  exit 0
fi
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }
echo "runtime-setup: no container runtime found; installing bubblewrap"
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1 ||
  { as_root apt-get update -qq >/dev/null 2>&1 &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1; } ||
  echo "runtime-setup: could not install bubblewrap; install docker, podman or bubblewrap yourself"
