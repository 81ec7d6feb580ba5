"""Tiled servers on 127.0.0.1, started as a facility starts them (``tiled serve ...``) in a child
process: a databroker 2.x catalog (databroker's Mongo adapter on mongomock), and a directory of
this package's outputs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

API_KEY = "blueskyzarrtestkey" + uuid.uuid4().hex

CATALOG_CONFIG = """
trees:
  - path: /
    tree: databroker.mongo_normalized:MongoAdapter.from_mongomock
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def tiled_server(args: list[str], log: Path) -> Iterator[str]:
    """``tiled serve <args>`` on 127.0.0.1 (a free port) with the test API key; yields its URL."""
    port = _free_port()
    command = [sys.executable, "-m", "tiled", "serve", *args, "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "w") as out:
        proc = subprocess.Popen([*command, "--api-key", API_KEY], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # until it answers
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tiled serve did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def databroker_catalog(directory: Path) -> Iterator[str]:
    """A databroker 2.x catalog served by Tiled; runs are inserted over HTTP with ``Broker.insert``."""
    config = directory / "catalog.yml"
    config.write_text(CATALOG_CONFIG)
    with tiled_server(["config", str(config)], directory / "tiled.log") as url:
        yield url


@contextmanager
def client(url: str) -> Iterator[Any]:
    """A Tiled client of the server, its connections closed afterwards."""
    from tiled.client import from_uri

    tree = from_uri(url, api_key=API_KEY)
    try:
        yield tree
    finally:
        tree.context.close()


def env_with_key() -> dict[str, str]:
    return {**os.environ, "TILED_API_KEY": API_KEY}
