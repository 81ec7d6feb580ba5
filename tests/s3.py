"""A real S3 server on 127.0.0.1 for the tests (moto's ``ThreadedMotoServer``), and a fault-injecting proxy.

:class:`FaultProxy` is a loopback HTTP proxy, written with the standard library only, that stands
in front of the server and forwards every request, except those it is told to fail: it answers
them with an HTTP error (``fail``), or drops the connection without an answer (``drop``), or
fails every request until told otherwise (``outage``). It counts what it forwards, by method.
"""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import zarr
from bluesky import RunEngine
from bluesky import plans as bp
from moto.server import ThreadedMotoServer
from ophyd.sim import det, motor1, motor2
from stand_ins import FrameCounter

from bluesky_zarr import Writer

KEY_ID = "bluesky-zarr-test-key-id"
SECRET = "Sup3r-S3cret-" + uuid.uuid4().hex
"""The secret access key of every test: it must appear nowhere a writer leaves anything."""
REGION = "us-east-1"


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (a free port); yields its endpoint URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    """A boto3 client of the server: what a reader of the bucket that does not use this package uses."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )


def make_bucket(endpoint: str) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


def every_object(endpoint: str, bucket: str) -> dict[str, bytes]:
    """Every object of the bucket, key -> bytes, as boto3 reads them."""
    client = s3_client(endpoint)
    found: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found


def grid_run(RE: RunEngine, frames: tuple[int, int] = (6, 4)) -> list[tuple[str, Any]]:
    """A 3 x 4 grid scan of a camera and a detector, as documents."""
    documents: list[tuple[str, Any]] = []
    token = RE.subscribe(lambda name, doc: documents.append((name, doc)))
    RE(bp.grid_scan([FrameCounter(shape=frames), det], motor1, -1, 1, 3, motor2, 0, 2, 4), sample="LaB6")
    RE.unsubscribe(token)
    return documents


def feed(writer: Writer, documents: list[tuple[str, Any]]) -> None:
    with writer:
        for name, doc in documents:
            writer(name, doc)


def fsspec_store(endpoint: str, url: str) -> zarr.storage.FsspecStore:
    """A stock zarr store (s3fs) of ``url``, for reading back."""
    return zarr.storage.FsspecStore.from_url(
        url, read_only=True, storage_options={"endpoint_url": endpoint, "key": KEY_ID, "secret": SECRET}
    )


@dataclass
class Faults:
    """What the proxy does to the next requests."""

    fail: int = 0
    """answer this many requests with ``status``"""
    status: int = 503
    drop: int = 0
    """close the connection of this many requests without an answer"""
    outage: bool = False
    """fail every request with ``status``"""
    only: str | None = None
    """fault only requests of this method (``"PUT"``)"""
    every: int = 1
    """fault only every ``every``-th request (of those ``only`` selects)"""
    seen: int = 0
    hold: str | None = None
    """hold the first request whose path has this in it (``"partNumber=2"``) until ``release``"""
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    forwarded: Counter[str] = field(default_factory=Counter)
    faulted: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, method: str) -> str | None:
        with self.lock:
            if self.only is not None and method != self.only:
                return None
            self.seen += 1
            if self.outage:
                self.faulted[method] += 1
                return "fail"
            if self.seen % self.every:
                return None
            if self.fail:
                self.fail -= 1
                self.faulted[method] += 1
                return "fail"
            if self.drop:
                self.drop -= 1
                self.faulted[method] += 1
                return "drop"
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self) -> None:
        try:
            self._answer()
        except (BrokenPipeError, ConnectionResetError):  # the client went away (killed)
            self.close_connection = True

    def _answer(self) -> None:
        body = self._body()
        faults = self.server.faults
        if faults.hold is not None and faults.hold in self.path and not faults.held.is_set():
            faults.held.set()
            faults.release.wait(60)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        what = faults.take(self.command)
        if what == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if what == "fail":
            payload = b"<Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error>"
            self.send_response(faults.status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        upstream = http.client.HTTPConnection(
            self.server.upstream_host, self.server.upstream_port, timeout=30
        )
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in {"transfer-encoding", "connection"}
        }
        headers["Content-Length"] = str(len(body))
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
            self.send_response(response.status, response.reason)
            for k, v in response.getheaders():
                if k.lower() not in {"transfer-encoding", "connection", "content-length"}:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        finally:
            upstream.close()
        with faults.lock:
            faults.forwarded[self.command] += 1

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, faults: Faults) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream_host, self.upstream_port = host, int(port)
        self.faults = faults


@contextmanager
def fault_proxy(upstream: str) -> Iterator[tuple[str, Faults]]:
    """A fault-injecting proxy in front of ``upstream`` on 127.0.0.1; yields its endpoint and its faults."""
    faults = Faults()
    server = _ProxyServer(upstream, faults)
    thread = threading.Thread(target=server.serve_forever, name="fault-proxy", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", faults
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
