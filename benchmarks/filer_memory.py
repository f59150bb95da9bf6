"""Peak memory and throughput of the filer moving one large file each way, per scheme.

    python -m benchmarks.filer_memory                 # 1 GiB, every scheme (file, http, ftp, s3)
    python -m benchmarks.filer_memory --size-mib 256 --schemes http,s3

For each scheme the file goes up (an output stage: volume -> storage) and back down (an input
stage: storage -> a fresh volume). Each stage runs `run_stage` in its own Python process, which
reports its peak RSS (ru_maxrss) and the wall time of the stage. The baseline moves the same
bytes between the same places with `cp` (file://) or `curl` (http, ftp, and s3 as plain HTTP
requests to moto signed by curl's --aws-sigv4), in the same run, so throughput is a ratio to
the baseline on this machine right now. All servers run on 127.0.0.1; every copy is checked
byte for byte and deleted afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
LIMIT_MB = 150
# s3-whole: chunk_bytes at least the file size, so one GET and one PUT instead of parts. moto
# copies the whole object for every ranged GET, which makes part downloads from moto (not from
# S3) slow; this row shows the filer's own streaming speed against moto.
SCHEMES = ("file", "http", "ftp", "s3", "s3-whole")


# The measured process ---------------------------------------------------------------------------


def child(spec: dict[str, Any]) -> None:
    """Run one filer stage and print its result, peak RSS and wall time as one JSON line."""
    from tesk.config import FilerConfig
    from tesk.filer import run_stage
    from tesk.tes.models import Task

    config = FilerConfig.model_validate(spec["config"])
    task = Task.model_validate(spec["task"])
    started = time.perf_counter()
    result = run_stage(spec["direction"], task, Path(spec["volume"]), config)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"result": result, "seconds": seconds, "peak_rss_mb": peak_kib / 1024}))


def run_child(spec: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.filer_memory", "--child", json.dumps(spec)]
    done = subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"filer process failed: {done.stderr[-2000:]}")
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if not report["result"].get("ok") or report["result"].get("errors"):
        raise RuntimeError(f"filer stage failed: {report['result']}")
    return report


def idle_rss_mb() -> float:
    """Peak RSS of a process that only imports the filer and makes an S3 client."""
    code = (
        "import resource, boto3, tesk.filer;"
        "boto3.session.Session().client('s3', region_name='us-east-1');"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout.strip()) / 1024


# Data and checks --------------------------------------------------------------------------------


def make_file(path: Path, size: int) -> str:
    """Write `size` random-looking bytes to `path`; their SHA-256."""
    block = os.urandom(16 * MIB)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            out.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while chunk := data.read(8 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


# Storage endpoints ------------------------------------------------------------------------------


@dataclass
class Place:
    """One scheme's storage: where the filer writes, and how curl/cp copies the same bytes."""

    scheme: str
    url: str  # the filer's URL for the object
    env: dict[str, str]
    local: Path | None  # the file on disk behind `url`, when there is one to check
    baseline_down: list[str]  # a command that copies the second object to the baseline file
    baseline_up: list[str]  # a command that copies the source file to a second object
    config: dict[str, Any] | None = None  # FilerConfig settings that differ for this row
    cleanup: Callable[[], object] | None = None  # removes the row's objects from the storage


@contextmanager
def places(
    scratch: Path, source: Path, baseline_dest: Path, wanted: list[str]
) -> Iterator[dict[str, Place]]:
    from tests.fixtures.servers import FtpServer, HttpServer, MotoServer

    curl = ["curl", "--silent", "--show-error", "--fail", "--noproxy", "*"]
    found: dict[str, Place] = {}
    with ExitStack() as stack:
        if "file" in wanted:
            root = scratch / "file-root"
            root.mkdir()
            found["file"] = Place(
                "file",
                (root / "big.bin").as_uri(),
                {},
                root / "big.bin",
                ["cp", str(root / "copy.bin"), str(baseline_dest)],
                ["cp", str(source), str(root / "copy.bin")],
            )
        if "http" in wanted:
            (scratch / "http-root").mkdir()
            http = stack.enter_context(HttpServer(scratch / "http-root"))
            found["http"] = Place(
                "http",
                http.url("big.bin"),
                {},
                http.root / "big.bin",
                [*curl, "-o", str(baseline_dest), http.url("copy.bin")],
                [*curl, "-T", str(source), http.url("copy.bin")],
            )
        if "ftp" in wanted:
            (scratch / "ftp-root").mkdir()
            ftp = stack.enter_context(FtpServer(scratch / "ftp-root"))
            found["ftp"] = Place(
                "ftp",
                ftp.url("big.bin"),
                {},
                ftp.root / "big.bin",
                [*curl, "-o", str(baseline_dest), ftp.url("copy.bin")],
                [*curl, "-T", str(source), ftp.url("copy.bin")],
            )
        if "s3" in wanted or "s3-whole" in wanted:
            moto = stack.enter_context(MotoServer())
            s3 = moto.client()
            s3.create_bucket(Bucket="bench")
            plain = f"{moto.endpoint}/bench"
            signed = [*curl, "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", "testing:testing"]
            for scheme in ("s3", "s3-whole"):
                found[scheme] = Place(
                    scheme,
                    f"s3://bench/{scheme}.bin",
                    moto.env,
                    None,
                    [*signed, "-o", str(baseline_dest), f"{plain}/{scheme}-copy.bin"],
                    [*signed, "-T", str(source), f"{plain}/{scheme}-copy.bin"],
                    {"chunk_bytes": source.stat().st_size + 1} if scheme == "s3-whole" else None,
                    cleanup=lambda scheme=scheme: [
                        s3.delete_object(Bucket="bench", Key=f"{scheme}{suffix}.bin")
                        for suffix in ("", "-copy")
                    ],
                )
        yield found


# The run ----------------------------------------------------------------------------------------


def measure_once(
    place: Place, scratch: Path, source: Path, digest: str, config: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """One round: the filer up and down, then the baseline up and down; every copy checked."""
    base_task = {"executors": [{"image": "none", "command": ["true"]}]}
    up_volume = scratch / "volume-up"
    (up_volume / "data").mkdir(parents=True)
    os.link(source, up_volume / "data/big.bin")  # the executor's output, without another copy
    up_spec = {
        "direction": "outputs",
        "volume": str(up_volume),
        "config": config,
        "task": {**base_task, "outputs": [{"url": place.url, "path": "/data/big.bin"}]},
    }
    up = run_child(up_spec, place.env)
    shutil.rmtree(up_volume)

    down_volume = scratch / "volume-down"
    down_volume.mkdir()
    down_spec = {
        "direction": "inputs",
        "volume": str(down_volume),
        "config": config,
        "task": {
            **base_task,
            "inputs": [{"url": place.url, "path": "/data/big.bin", "type": "FILE"}],
        },
    }
    down = run_child(down_spec, place.env)
    if sha256(down_volume / "data/big.bin") != digest:
        raise RuntimeError(f"{place.scheme}: the downloaded file differs from the source")
    shutil.rmtree(down_volume)
    if place.local is not None and sha256(place.local) != digest:
        raise RuntimeError(f"{place.scheme}: the uploaded file differs from the source")

    baseline_dest = scratch / "baseline.bin"
    base_up = timed(place.baseline_up)
    base_down = timed(place.baseline_down)  # reads back what baseline_up wrote
    if sha256(baseline_dest) != digest:
        raise RuntimeError(f"{place.scheme}: the baseline copy differs from the source")
    baseline_dest.unlink()
    if place.local is not None:
        place.local.unlink()
        (place.local.parent / "copy.bin").unlink()
    if place.cleanup is not None:
        place.cleanup()
    return {
        "upload": {
            "seconds": up["seconds"],
            "peak_rss_mb": up["peak_rss_mb"],
            "baseline_seconds": base_up,
        },
        "download": {
            "seconds": down["seconds"],
            "peak_rss_mb": down["peak_rss_mb"],
            "baseline_seconds": base_down,
        },
    }


def measure(
    place: Place, scratch: Path, source: Path, digest: str, config: dict[str, Any], rounds: int
) -> dict[str, Any]:
    """The best time of `rounds` rounds for the filer and for the baseline; the highest RSS.

    On a shared machine a round can be slowed by anything else running; the best of several
    is the closest to what the program itself costs.
    """
    config = {**config, **(place.config or {})}
    results = [measure_once(place, scratch, source, digest, config) for _ in range(rounds)]
    row: dict[str, Any] = {"scheme": place.scheme, "rounds": rounds}
    for direction in ("upload", "download"):
        runs = [result[direction] for result in results]
        row[direction] = {
            "seconds": min(run["seconds"] for run in runs),
            "baseline_seconds": min(run["baseline_seconds"] for run in runs),
            "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
        }
    return row


def report(rows: list[dict[str, Any]], size: int, idle: float | None) -> str:
    rounds = rows[0]["rounds"] if rows else 0
    lines = [f"file size: {size / MIB:.0f} MiB; best of {rounds} rounds"]
    if idle is not None:
        lines[0] += f"; filer process with imports only: {idle:.0f} MB"
    lines += [
        "",
        "| scheme | direction | filer peak RSS (MB) | filer MB/s | baseline MB/s "
        "| filer / baseline |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        for direction in ("download", "upload"):
            m = row[direction]
            rate = size / MIB / m["seconds"]
            base = size / MIB / m["baseline_seconds"]
            ratio = m["baseline_seconds"] / m["seconds"]
            lines.append(
                f"| {row['scheme']} | {direction} | {m['peak_rss_mb']:.0f} | {rate:.0f} "
                f"| {base:.0f} | {ratio:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--schemes", default=",".join(SCHEMES))
    parser.add_argument("--rounds", type=int, default=3, help="best time of this many rounds")
    parser.add_argument("--workdir", type=Path, default=None, help="where the large files go")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    logging.basicConfig(level=logging.WARNING)  # also keeps pyftpdlib from logging every login
    wanted = [s for s in args.schemes.split(",") if s]
    unknown = set(wanted) - set(SCHEMES)
    if unknown:
        parser.error(f"unknown schemes {sorted(unknown)}; choose from {', '.join(SCHEMES)}")
    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory(prefix="tesk-filer-bench-", dir=args.workdir) as name:
        scratch = Path(name)
        source = scratch / "source.bin"
        digest = make_file(source, size)
        roots = [str(scratch / "file-root")]
        config = {"file_roots": roots, "retry": {"attempts": 2, "timeout_s": 120}}
        rows = []
        with places(scratch, source, scratch / "baseline.bin", wanted) as found:
            for scheme in wanted:
                rows.append(measure(found[scheme], scratch, source, digest, config, args.rounds))
                print(report(rows[-1:], size, None), file=sys.stderr, flush=True)
    idle = idle_rss_mb()
    print(report(rows, size, idle))
    worst = max(row[d]["peak_rss_mb"] for row in rows for d in ("upload", "download"))
    print(f"\nhighest filer peak RSS: {worst:.0f} MB (limit {LIMIT_MB} MB)")
    if args.json:
        print(json.dumps({"size_bytes": size, "idle_rss_mb": idle, "rows": rows}))
    if worst >= LIMIT_MB:
        sys.exit(1)


if __name__ == "__main__":
    main()
