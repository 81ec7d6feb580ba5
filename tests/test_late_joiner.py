"""A writer that joins a run already under way: a service behind bluesky's real 0MQ proxy, started
mid-scan in its own process, and a writer subscribed to a RunEngine mid-run.

Such a writer cannot write the run it joined (it has no start document), so it says so once, as
a warning naming the run, never raises into the scan, and writes the next run whole.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from bluesky import RunEngine
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from ophyd.sim import det

from bluesky_zarr import DocumentError, ZarrWriter, export

pytest.importorskip("zmq")
from bluesky.callbacks.zmq import Publisher

PROXY = textwrap.dedent(
    """
    from bluesky.callbacks.zmq import Proxy
    proxy = Proxy(in_address="tcp://127.0.0.1", out_address="tcp://127.0.0.1")
    print(proxy.in_port, proxy.out_port, flush=True)
    proxy.start()
    """
)

SERVICE = textwrap.dedent(
    """
    import logging, os, sys
    from bluesky.callbacks.zmq import RemoteDispatcher
    from bluesky_zarr import ZarrWriter

    logging.basicConfig(level=logging.WARNING, format="WARNING %(message)s")
    address, directory = sys.argv[1], sys.argv[2]
    dispatcher = RemoteDispatcher(address)
    writer = ZarrWriter(directory)
    started = set()

    def on_document(name, doc):
        if name == "start":
            started.add(doc["uid"])
        writer(name, doc)
        if name == "stop" and doc["run_start"] in started:  # the first run it sees whole
            writer.close()
            print("left out", sorted(writer.left_out.values()), flush=True)
            sys.stderr.flush()
            os._exit(0)  # done: the dispatcher has no way to stop from inside its own callback

    dispatcher.subscribe(on_document)
    dispatcher.loop.call_soon(lambda: print("listening", flush=True))
    dispatcher.start()
    """
)


def _status(store: Path) -> str:
    return json.loads((store / "zarr.json").read_text())["attributes"]["status"]  # type: ignore[no-any-return]


def test_a_service_started_mid_scan_warns_once_and_writes_the_next_run(tmp_path):
    proxy = subprocess.Popen([sys.executable, "-c", PROXY], stdout=subprocess.PIPE, text=True)
    service = publisher = None
    try:
        documents_in, documents_out = proxy.stdout.readline().split()  # type: ignore[union-attr]
        assert documents_in.startswith("tcp://127.0.0.1:") and documents_out.startswith("tcp://127.0.0.1:")
        RE = RunEngine({})
        publisher = Publisher(documents_in)
        RE.subscribe(publisher)
        record: list[tuple[str, dict]] = []
        RE.subscribe(lambda name, doc: record.append((name, doc)))
        seen: dict[str, str] = {}

        def joined_mid_run():
            nonlocal service
            seen["joined"] = yield from bps.open_run()
            for _ in range(3):
                yield from bps.trigger_and_read([det])
            service = subprocess.Popen(
                [sys.executable, "-c", SERVICE, documents_out, str(tmp_path)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parent,
            )  # fmt: skip
            assert service.stdout.readline() == "listening\n"  # type: ignore[union-attr]
            # 0MQ subscriptions take a moment to reach the publisher: keep the run going till then
            for _ in range(40):
                yield from bps.trigger_and_read([det])
                yield from bps.sleep(0.05)
            yield from bps.close_run()

        RE(joined_mid_run())  # the scan ends as it would without the service
        (whole,) = RE(bp.count([det], 5))
        out, err = service.communicate(timeout=60)  # type: ignore[union-attr]
        assert service.returncode == 0, err  # type: ignore[union-attr]
        warnings = [line for line in err.splitlines() if line.startswith("WARNING")]
        # once, naming the run (or, when the service joined after its descriptor, the descriptor)
        (descriptor,) = [
            d["uid"] for n, d in record if n == "descriptor" and d["run_start"] == seen["joined"]
        ]
        assert len(warnings) == 1 and (seen["joined"] in warnings[0] or descriptor in warnings[0]), err
        assert "never received" in warnings[0] and "Traceback" not in err
        (left_out,) = json.loads(out.split("left out ")[1])
        assert left_out > 1  # every later document of that run was counted, not reported
        assert not (tmp_path / f"{seen['joined']}.zarr").exists()
        assert _status(tmp_path / f"{whole}.zarr") == "success"
    finally:
        if publisher is not None:
            publisher.close()
        for process in (service, proxy):
            if process is not None:
                if process.poll() is None:
                    process.kill()
                process.communicate()


def test_a_writer_subscribed_mid_run_never_stops_the_scan(tmp_path, caplog):
    RE = RunEngine({})
    writer = ZarrWriter(tmp_path)

    def subscribed_mid_run():
        uid = yield from bps.open_run()
        RE.subscribe(writer)
        for _ in range(5):
            yield from bps.trigger_and_read([det])
        yield from bps.close_run()
        return uid

    RE(subscribed_mid_run())
    (whole,) = RE(bp.count([det], 2))
    warned = [r.getMessage() for r in caplog.records if "never received" in r.getMessage()]
    assert len(warned) == 1
    assert sum(writer.left_out.values()) == 7  # the descriptor, five events, the stop
    assert _status(tmp_path / f"{whole}.zarr") == "success"


def test_export_of_documents_without_their_start_writes_the_other_runs_then_says_so(RE, record, tmp_path):
    RE(bp.count([det], 2))
    RE(bp.count([det], 3))
    first, second = (d["uid"] for n, d in record if n == "start")
    docs = [(n, d) for n, d in record if not (n == "start" and d["uid"] == first)]
    with pytest.raises(DocumentError, match=rf"no start document of run\(s\) {first} \(4 documents\)"):
        export(docs, tmp_path)
    assert _status(tmp_path / f"{second}.zarr") == "success"
