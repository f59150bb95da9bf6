"""Create throughput of the TES API against a bare Flask endpoint under the same server.

Both apps run under gunicorn with the same worker count and settings as `tesk serve`; wrk posts the
same small task with 16 connections. TESK's API stores each task in SQLite (WAL) and notifies the
local runner, which is not started here: executing tens of thousands of tasks would compete with the
API for the machine's cores and measure the runtime instead of the API. Rounds alternate between the
two servers so that load from elsewhere on the machine hits both alike.

    python -m benchmarks.create_throughput [--rounds 3] [--seconds 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import requests

from benchmarks.common import free_port, write_report

TASK = '{"name": "bench", "executors": [{"image": "alpine", "command": ["echo", "hello"]}]}'
LUA = f"""
wrk.method = "POST"
wrk.body = '{TASK}'
wrk.headers["Content-Type"] = "application/json"
"""


@contextmanager
def gunicorn(app: str, workers: int, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--workers", str(workers)]
    command += ["--bind", f"127.0.0.1:{port}", "--log-level", "warning", app]
    url = f"http://127.0.0.1:{port}/ga4gh/tes/v1/tasks"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=log
        )
        try:
            _wait_until_serving(url, process, log)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the server did not start: {log.read().decode()[-2000:]}")
        try:
            requests.post(url, data=TASK, headers={"Content-Type": "application/json"}, timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within 60 s")


def wrk(url: str, seconds: int, script: Path) -> tuple[float, int]:
    """Requests per second and the number of non-2xx answers."""
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stdout} {out.stderr}")
    text = out.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    return rate, int(bad.group(1)) if bad else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "post.lua"
        script.write_text(LUA)
        tesk_env = {"TESK_DATA_DIR": str(Path(tmp) / "data"), "TESK_RUNTIME": "bwrap"}
        bare: list[float] = []
        tesk: list[float] = []
        errors = 0
        for _ in range(args.rounds):
            with gunicorn("benchmarks.bare_app:app", args.workers, {}) as url:
                rate, bad = wrk(url, args.seconds, script)
                bare.append(rate)
                errors += bad
            with gunicorn("tesk.app:wsgi()", args.workers, tesk_env) as url:
                rate, bad = wrk(url, args.seconds, script)
                tesk.append(rate)
                errors += bad
    ratios = [t / b for t, b in zip(tesk, bare, strict=True)]
    lines = [
        f"gunicorn, {args.workers} sync workers, wrk 2 threads x 16 connections, "
        f"{args.rounds} alternating rounds of {args.seconds} s, non-2xx answers: {errors}",
        "",
        "| round | bare Flask (req/s) | TESK POST /tasks (req/s) | ratio |",
        "|---|---|---|---|",
        *(
            f"| {i + 1} | {b:.0f} | {t:.0f} | {r:.2f} |"
            for i, (b, t, r) in enumerate(zip(bare, tesk, ratios, strict=True))
        ),
        f"| median | {statistics.median(bare):.0f} | {statistics.median(tesk):.0f} "
        f"| {statistics.median(ratios):.2f} |",
    ]
    print("\n".join(lines))
    write_report("create-throughput", "Create throughput", __doc__ or "", lines)


if __name__ == "__main__":
    main()
