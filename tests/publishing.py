"""Documents published over bluesky's real 0MQ proxy to ``bluesky-zarr serve``, each part a process of
its own, every socket on 127.0.0.1.

- :func:`proxy`: ``bluesky.callbacks.zmq.Proxy`` started in Python (never the ``bluesky-0MQ-proxy``
  script, which binds every interface) in a child process, on ports 0MQ picks on 127.0.0.1.
- :func:`serve`: ``bluesky-zarr serve`` as a user runs it; its log lines are collected as they come.
- :func:`publisher`: a RunEngine with a ``Publisher`` in a child process.

0MQ's slow joiner: a subscriber gets nothing published before its subscription reached the
publisher. So the publisher first sends, again and again, the stop document of a run whose start
``serve`` never saw (a service that joined mid-run, which it must survive anyway) until ``serve``
logs it; from then on every document reaches ``serve``, and the test tells the publisher to go.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from command_line import CLI
from processes import child_environment

TIMEOUT = 120.0
"""Seconds any step may take on a loaded machine before the test fails."""

PROBE = "probe-run-serve-never-saw-start"

PROXY = textwrap.dedent(
    """
    from bluesky.callbacks.zmq import Proxy
    proxy = Proxy(in_address="tcp://127.0.0.1", out_address="tcp://127.0.0.1")
    print(proxy.in_port, proxy.out_port, flush=True)
    proxy.start()
    """
)

PUBLISHER = textwrap.dedent(
    """
    import json, select, sys, time
    from bluesky import RunEngine, plans as bp
    from bluesky.callbacks.zmq import Publisher
    from ophyd.sim import det4, motor1, motor2

    address, mode, probe = sys.argv[1], sys.argv[2], sys.argv[3]
    publisher = Publisher(address)
    stop = {"uid": probe + "-stop", "run_start": probe, "time": time.time(), "exit_status": "success",
            "reason": "", "num_events": {}}
    while not select.select([sys.stdin], [], [], 0.05)[0]:  # until the test says serve hears us
        publisher("stop", stop)
    sys.stdin.readline()

    RE = RunEngine({})
    events = []
    RE.subscribe(lambda name, doc: name == "event" and events.append(doc["data"]["det4"]))
    if mode == "gap":  # one event lost on the way, as a slow 0MQ subscriber loses them
        lose = lambda name, doc: name == "event" and doc["seq_num"] == 3
        RE.subscribe(lambda name, doc: None if lose(name, doc) else publisher(name, doc))
    else:
        RE.subscribe(publisher)
    if mode == "hold":  # hold the scan after 6 events until the test says
        def hold(name, doc):
            if name == "event" and doc["seq_num"] == 6:
                print(json.dumps({"held": 6}), flush=True)
                sys.stdin.readline()
        RE.subscribe(hold)
    (uid,) = RE(bp.grid_scan([det4], motor1, -1, 1, 4, motor2, -2, 2, 5))
    print(json.dumps({"uid": uid, "det4": events}), flush=True)
    publisher.close()
    """
)


class Lines:
    """A child's text stream read as it comes, in a thread; :meth:`wait` for a line."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)
            self._new.put(line)
        self._new.put(None)

    def wait(self, matches: Callable[[str], bool], what: str) -> str:
        for line in self.lines:
            if matches(line):
                return line
        deadline = time.monotonic() + TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._new.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            if matches(line):
                return line
        raise AssertionError(f"no line {what} came; got:\n{self.text}")

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def join(self) -> None:
        self._thread.join(timeout=TIMEOUT)


def _end(process: subprocess.Popen[str], *read: Lines) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=TIMEOUT)
    for lines in read:  # to the end of what the child wrote, before its pipes are closed
        lines.join()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()


@contextmanager
def proxy() -> Iterator[tuple[str, str]]:
    """A bluesky 0MQ proxy on 127.0.0.1; yields (where publishers send, where subscribers connect)."""
    process = subprocess.Popen([sys.executable, "-c", PROXY], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        documents_in, documents_out = process.stdout.readline().split()
        assert documents_in.startswith("tcp://127.0.0.1:") and documents_out.startswith("tcp://127.0.0.1:")
        yield documents_in, documents_out
    finally:
        _end(process)


class Served:
    """``bluesky-zarr serve`` running in a child process."""

    def __init__(self, *args: object) -> None:
        self.process = subprocess.Popen(
            [*CLI, "serve", *map(str, args)],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=child_environment(),
        )  # fmt: skip
        self.log = Lines(self.process.stderr)

    def terminate(self) -> int:
        """SIGTERM, as systemd stops it; its exit code."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=TIMEOUT)
        self.log.join()
        return code


@contextmanager
def serve(*args: object) -> Iterator[Served]:
    served = Served(*args)
    try:
        yield served
    finally:
        _end(served.process, served.log)


class Published:
    """A RunEngine publishing a 4 x 5 grid scan of ``det4`` in a child process."""

    def __init__(self, address: str, mode: str, served: Served) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, address, mode, PROBE],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_environment(),
        )  # fmt: skip
        self.out = Lines(self.process.stdout)
        served.log.wait(lambda line: f"run {PROBE} stop" in line, "saying serve heard the publisher")
        self.go()

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def message(self, key: str) -> dict[str, Any]:
        line = self.out.wait(lambda line: line.startswith("{") and key in json.loads(line), f"with {key}")
        return json.loads(line)  # type: ignore[no-any-return]

    def finished(self) -> dict[str, Any]:
        """The scan's uid and the det4 readings it published, once it ended."""
        done = self.message("uid")
        assert self.process.wait(timeout=TIMEOUT) == 0
        return done


@contextmanager
def publisher(address: str, served: Served, mode: str = "scan") -> Iterator[Published]:
    published = Published(address, mode, served)
    try:
        yield published
    finally:
        _end(published.process, published.out)
