# Sourced by scripts/test-setup.sh. Fetches, once, the tools the tests use that are not Python
# dependencies of TESK, so that the tests themselves only talk to 127.0.0.1:
# helm (chart tests) and py-tes 0.4.2 (the old-client tests; it cannot share a venv with 1.1.4).
if ! scripts/fetch-helm.sh >/dev/null; then
  echo "tools-setup: could not fetch helm; the chart tests will say why"
fi
if [ ! -f .cache/pytes04/tes/__init__.py ]; then
  staging="$(mktemp -d .cache/pytes04-XXXXXX)"
  if .venv/bin/python -m pip install --quiet --disable-pip-version-check --target "$staging" py-tes==0.4.2; then
    rm -rf .cache/pytes04 && mv "$staging" .cache/pytes04
  else
    rm -rf "$staging"
    echo "tools-setup: could not install py-tes 0.4.2; the old-client tests will say why"
  fi
fi
