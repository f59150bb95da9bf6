"""Run every benchmark (or those named): `python -m benchmarks [name ...]`.

Each benchmark is also a module of its own (`python -m benchmarks.<name> --help`); figures and how
to read them are in docs/performance.md.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

HELPERS = {"__main__", "common", "bare_app", "foca_stub", "served"}


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name not in HELPERS)


def main(names: list[str]) -> int:
    known = available()
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(known)}")
        return 2
    failed = []
    for name in names or known:
        print(f"== {name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], check=False).returncode:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
