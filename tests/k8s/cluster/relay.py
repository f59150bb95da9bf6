"""A TCP relay between the host's network namespace and the cluster's.

    python -m tests.k8s.cluster.relay --listen 127.0.0.1:16443 --connect 10.250.0.1:6443 \\
        --netns tesk-k8s [--reverse]

Without --reverse it listens on the host and connects inside the namespace (the host reaching the
API server); with --reverse it listens inside the namespace and connects on the host (pods reaching
a test server on the host's loopback). A socket stays in the namespace it was created in, so the
relay creates the one side, enters the namespace, and creates the other there.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import socket

CLONE_NEWNET = 0x40000000


def enter_netns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into network namespace {name}")
    finally:
        os.close(fd)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def listening_socket(address: tuple[str, int]) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve(listener: socket.socket, target: tuple[str, int], connect_netns: int) -> None:
    """Relays each connection; `connect_netns` is a namespace fd to create outgoing sockets in."""

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream = await asyncio.open_connection(sock=_connected(target, connect_netns))
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, upstream[1]), _pipe(upstream[0], writer))

    server = await asyncio.start_server(relay, sock=listener)
    async with server:
        await server.serve_forever()


def _connected(target: tuple[str, int], netns_fd: int) -> socket.socket:
    libc = ctypes.CDLL(None, use_errno=True)
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if libc.setns(netns_fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    finally:
        libc.setns(here, CLONE_NEWNET)
        os.close(here)
    sock.settimeout(5)
    try:
        sock.connect(target)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", required=True)
    parser.add_argument("--connect", required=True)
    parser.add_argument("--netns", required=True)
    parser.add_argument("--reverse", action="store_true")
    args = parser.parse_args()
    host_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    cluster_ns = os.open(f"/run/netns/{args.netns}", os.O_RDONLY)
    if args.reverse:
        enter_netns(args.netns)
        listener = listening_socket(_address(args.listen))
        connect_ns = host_ns
    else:
        listener = listening_socket(_address(args.listen))
        connect_ns = cluster_ns
    asyncio.run(serve(listener, _address(args.connect), connect_ns))


if __name__ == "__main__":
    main()
