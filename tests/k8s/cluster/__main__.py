"""python -m tests.k8s.cluster up | down | status | build"""

from __future__ import annotations

import sys

from . import build
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
