# shellcheck shell=bash
# Podman for the runtime contract tests (sourced by scripts/test-setup.sh, which defines
# $env_file). Writes a containers.conf that works on machines like the CI runners (runc, not
# crun; default ulimits low enough for a container to set) to .cache/podman/containers.conf,
# leaving the system's configuration alone, and imports a busybox-static root file system as the
# image localhost/busybox (no registry needed; done once, then reused). Exports CONTAINERS_CONF
# and TESK_TEST_PODMAN_IMAGE when a container really runs; otherwise says why and exports
# nothing, so the podman tests are skipped.

tesk_podman_setup() {
  local image=localhost/busybox
  local conf_dir="$PWD/.cache/podman"
  local conf="$conf_dir/containers.conf"
  local busybox rootfs applet output

  if ! command -v podman >/dev/null; then
    echo "podman-setup: podman is not installed; podman tests are skipped"
    return 0
  fi
  mkdir -p "$conf_dir"
  cat >"$conf" <<'CONF'
# TESK test settings: runc (crun cannot start containers on kernels with hybrid cgroups) and
# default ulimits a container may set without raising the host's hard limits.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF
  export CONTAINERS_CONF="$conf"

  if ! podman image exists "$image" 2>/dev/null; then
    busybox=$(command -v busybox || true)
    [ -n "$busybox" ] || busybox=/bin/busybox
    if [ ! -x "$busybox" ]; then
      echo "podman-setup: busybox-static is not installed; podman tests are skipped"
      return 0
    fi
    rootfs=$(mktemp -d)
    mkdir -p "$rootfs"/{bin,dev,etc,proc,sys,tmp,root,usr/bin,usr/sbin,sbin}
    chmod 1777 "$rootfs/tmp"
    cp "$busybox" "$rootfs/bin/busybox"
    for applet in $("$busybox" --list); do
      [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
      >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
    if ! output=$(tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/sh"]' - "$image" 2>&1); then
      rm -rf "$rootfs"
      echo "podman-setup: podman import failed ($output); podman tests are skipped"
      return 0
    fi
    rm -rf "$rootfs"
  fi

  # With the default network, as TESK runs executors unless told otherwise.
  if ! output=$(podman run --rm "$image" /bin/sh -c 'echo tesk-podman-ok' 2>&1) ||
    [ "${output##*$'\n'}" != tesk-podman-ok ]; then
    echo "podman-setup: a container does not run ($output); podman tests are skipped"
    return 0
  fi
  {
    echo "export CONTAINERS_CONF=$conf"
    echo "export TESK_TEST_PODMAN_IMAGE=$image"
  } >>"$env_file"
  echo "podman-setup: $image runs with $conf"
}

tesk_podman_setup || echo "podman-setup: failed; podman tests are skipped"
unset -f tesk_podman_setup
