"""The shape of the harness's own cluster agents (provisioner, standby node): parse the common
flags, then do one step every interval for ever, riding out API server restarts."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable

from kubernetes import client, config


def parser(description: str, interval: float) -> argparse.ArgumentParser:
    found = argparse.ArgumentParser(description=description)
    found.add_argument("--kubeconfig", required=True)
    found.add_argument("--interval", type=float, default=interval)
    return found


def api_client(kubeconfig: str) -> client.ApiClient:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    api: client.ApiClient = config.new_client_from_config(config_file=kubeconfig)
    return api


def run_every(interval: float, step: Callable[[], None], log: logging.Logger) -> None:
    while True:
        try:
            step()
        except Exception as error:  # the API server may be restarting: try again
            log.warning("%s failed: %s", step.__name__, error)
        time.sleep(interval)
