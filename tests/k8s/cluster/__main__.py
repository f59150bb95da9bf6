"""python -m tests.k8s.cluster up | down | status | build | serve [--port PORT]"""

from __future__ import annotations

import argparse
import sys

from . import build, serve
from .cluster import Cluster


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    cluster = Cluster()
    if command == "up":
        cluster.up()
    elif command == "down":
        cluster.down()
    elif command == "build":
        build.ensure_programs(cluster.layout)
    elif command == "serve":
        parser = argparse.ArgumentParser(prog="python -m tests.k8s.cluster serve")
        parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1")
        return serve.serve(parser.parse_args(argv[1:]).port)
    elif command == "status":
        healthy = cluster.healthy()
        print(f"k8s: {'healthy' if healthy else 'not running'}; running: {cluster.running()}")
        return 0 if healthy else 1
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
