# Sourced by scripts/test-setup.sh. The dashboard tests drive Debian's chromium with Playwright
# (tests/integration/test_dashboard.py); Playwright's own browser download cannot work offline.
# Without recommends: chromium's pull in desktop services the headless tests do not need.
if ! command -v chromium >/dev/null; then
  echo "chromium-setup: installing chromium"
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; then
    as_root apt-get update -qq >/dev/null 2>&1 || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 ||
      echo "chromium-setup: could not install chromium; the dashboard tests are skipped"
  fi
fi
