"""``bluesky-zarr serve``: a RunEngine in another process publishes through bluesky's real 0MQ proxy,
the service writes every run, and stops on SIGTERM as systemd stops it. Every part is a process of
its own, every socket on 127.0.0.1 (see ``publishing.py``)."""

from __future__ import annotations

import json
import re
import shlex
import socket
import threading
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import xarray as xr
from bluesky import RunEngine
from bluesky import plans as bp
from ophyd.sim import det

pytest.importorskip("zmq")

from command_line import bluesky_zarr
from publishing import PROBE, proxy, publisher, serve
from tables import batches_with_metadata

from bluesky_zarr import Parquet, Service, Zarr, inspect_run
from bluesky_zarr.cli import parser
from bluesky_zarr.writing import read_config


def _attrs(store: Path) -> dict:
    return json.loads((store / "zarr.json").read_text())["attributes"]  # type: ignore[no-any-return]


def test_serve_writes_every_event_of_a_scan_published_from_another_process(tmp_path):
    with (
        proxy() as (documents_in, documents_out),
        serve(documents_out, tmp_path, "--format", "zarr,parquet", "--flush-interval", "0.05") as served,
    ):
        with publisher(documents_in, served) as published:
            done = published.finished()
        uid = done["uid"]
        served.log.wait(lambda line: f"run {uid} stop" in line, "saying the run stopped")
        assert served.terminate() == 0, served.log.text
    log = served.log.text
    store = tmp_path / f"{uid}.zarr"
    assert _attrs(store)["status"] == "success"
    ds = xr.open_zarr(store, group="primary")
    assert ds.det4.shape == (4, 5)
    np.testing.assert_array_equal(ds.det4.values.ravel(), done["det4"])
    np.testing.assert_array_equal(ds.seq_num.values.ravel(), np.arange(1, 21))
    table = pq.read_table(tmp_path / uid / "primary.parquet")
    assert table.column("seq_num").to_pylist() == list(range(1, 21))
    np.testing.assert_array_equal(table.column("det4").to_numpy(), done["det4"])
    # one line at the start (uid, plan, outputs) and one at the stop (status, events, seconds)
    (start,) = [line for line in log.splitlines() if f"run {uid} start" in line]
    assert "plan grid_scan" in start and f"{uid}.zarr" in start and str(tmp_path / uid) in start
    (stop,) = [line for line in log.splitlines() if f"run {uid} stop" in line]
    assert "status success, 20 events" in stop and stop.rstrip().endswith(" s")
    # the run serve joined after its start (the publisher's probe) is left out, with one warning
    warned = [line for line in log.splitlines() if "never received" in line]
    assert len(warned) == 1 and PROBE in warned[0], log
    assert not list(tmp_path.glob(f"{PROBE}*")) and "Traceback" not in log


def test_sigterm_mid_run_writes_every_event_received_and_ends_the_run_incomplete(tmp_path):
    # nothing is flushed on a timer here: what is on disk after SIGTERM, SIGTERM wrote
    options = ("--format", "zarr,parquet", "--flush-interval", "3600", "--log-level", "DEBUG")
    with (
        proxy() as (documents_in, documents_out),
        serve(documents_out, tmp_path, *options) as served,
        publisher(documents_in, served, mode="hold") as published,
    ):
        published.message("held")  # six events published, the scan held
        served.log.wait(lambda line: "received event seq_num 6 " in line, "saying serve got six events")
        (start,) = [line for line in served.log.lines if " start: plan grid_scan" in line]
        uid = start.split("run ")[1].split()[0]
        assert served.terminate() == 0, served.log.text
        published.go()  # the scan goes on with nobody listening; it never notices
        published.finished()
    log = served.log.text
    store, table = tmp_path / f"{uid}.zarr", tmp_path / uid / "primary.parquet"
    assert _attrs(store)["status"] == "incomplete"
    ds = xr.open_zarr(store, group="primary")
    assert int(ds.written.sum()) == 6
    assert ds.seq_num.values.ravel()[:6].tolist() == list(range(1, 7))
    assert pq.read_table(table).column("seq_num").to_pylist() == list(range(1, 7))
    assert pq.read_schema(table).metadata[b"status"] == b'"incomplete"'
    assert "SIGTERM: stopping" in log and f"run {uid} stop: status incomplete" in log
    assert "Traceback" not in log


def test_a_gap_in_seq_num_is_warned_and_recorded_by_every_format(tmp_path):
    formats = "zarr,parquet,arrow,hdf5,csv"
    with (
        proxy() as (documents_in, documents_out),
        serve(documents_out, tmp_path, "--format", formats, "--flush-interval", "0.05") as served,
    ):
        with publisher(documents_in, served, mode="gap") as published:  # seq_num 3 never published
            uid = published.finished()["uid"]
        served.log.wait(lambda line: f"run {uid} stop" in line, "saying the run stopped")
        assert served.terminate() == 0, served.log.text
    gaps = {"primary": [[3, 3]]}
    (warned,) = [line for line in served.log.lines if "misses" in line]
    assert uid in warned and "'primary' misses 1 event(s), seq_num 3" in warned
    store = tmp_path / f"{uid}.zarr"
    assert json.loads(xr.open_zarr(store).attrs["gaps"]) == gaps  # JSON text, as NetCDF holds it
    assert _attrs(store)["status"] == "partial"
    ds = xr.open_zarr(store, group="primary")
    assert int(ds.written.sum()) == 19 and not bool(ds.written.values.ravel()[2])
    parquet = pq.read_schema(tmp_path / uid / "primary.parquet").metadata
    assert json.loads(parquet[b"gaps"]) == gaps and json.loads(parquet[b"status"]) == "partial"
    *_, (_, custom) = batches_with_metadata(tmp_path / uid / "primary.arrows")
    assert custom["gaps"] == gaps and custom["status"] == "partial"
    with h5py.File(tmp_path / f"{uid}.h5", "r") as h5:
        assert json.loads(h5.attrs["gaps"]) == gaps and h5.attrs["status"] == "partial"
    assert pd.read_csv(tmp_path / uid / "primary.csv")["seq_num"].tolist() == [1, 2, *range(4, 21)]
    assert inspect_run(store)["gaps"] == gaps


def test_a_config_file_gives_the_formats_their_options_and_flags_win(tmp_path):
    config = tmp_path / "serve.toml"
    with proxy() as (documents_in, documents_out):
        config.write_text(
            f'address = "{documents_out}"\n'
            f'directory = "{tmp_path / "data"}"\n'
            'formats = ["zarr"]\n'
            'file_prefix = "ignored-{start[uid]}"\n'
            "flush_interval = 0.05\n"
            "[parquet]\n"
            'compression = "snappy"\n'
            'data_keys = "scalars"\n'
        )
        with serve("--config", config, "--file-prefix", "scan-{start[scan_id]}") as served:
            with publisher(documents_in, served) as published:
                uid = published.finished()["uid"]
            served.log.wait(lambda line: f"run {uid} stop" in line, "saying the run stopped")
            assert served.terminate() == 0, served.log.text
    data = tmp_path / "data"
    assert xr.open_zarr(data / "scan-1.zarr", group="primary").det4.shape == (4, 5)
    parquet = pq.ParquetFile(data / "scan-1" / "primary.parquet")
    assert parquet.metadata.row_group(0).column(0).compression == "SNAPPY"
    assert parquet.read().num_rows == 20


def test_a_config_file_with_a_key_serve_does_not_know_is_refused_naming_it(tmp_path):
    config = tmp_path / "serve.toml"
    config.write_text('address = "127.0.0.1:1"\ndirectory = "data"\nflush_intreval = 1\n')
    done = bluesky_zarr("serve", "--config", config)
    assert done.returncode == 2 and "flush_intreval" in done.stderr
    config.write_text('address = "127.0.0.1:1"\ndirectory = "data"\n[zarr]\ncodec = "lz4"\n')
    done = bluesky_zarr("serve", "--config", config)
    assert done.returncode == 2 and "[zarr]" in done.stderr and "codec" in done.stderr
    config.write_text('formats = ["zar"]\n')
    done = bluesky_zarr("serve", "--config", config)
    assert done.returncode == 2 and "unknown format 'zar'" in done.stderr


HOW_TO = Path(__file__).parent.parent / "docs" / "how-to" / "serve-documents-from-0mq.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", HOW_TO.read_text(), re.DOTALL | re.MULTILINE)


def test_the_how_tos_configuration_file_and_systemd_unit_are_what_serve_takes():
    (toml,) = _blocks("toml")
    config = read_config(toml, "the how-to's serve.toml")
    assert [f.label for f in config.formats] == ["zarr", "parquet"]
    assert config.address == "127.0.0.1:5578" and config.directory == "/data/runs"
    assert config.formats[0] == Zarr(
        data_keys="arrays", codecs={"camera_image": "blosc-zstd"}, shards={"camera_image": "auto"}
    )
    assert config.formats[1] == Parquet(data_keys="scalars", compression="zstd")
    (unit,) = _blocks("ini")
    (command,) = [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart=")]
    args = parser().parse_args(shlex.split(command)[1:])
    assert args.command == "serve" and str(args.config) == "/etc/bluesky-zarr/serve.toml"
    for shell in _blocks("bash"):
        for line in shell.splitlines():
            if line.startswith("bluesky-zarr serve"):
                assert parser().parse_args(shlex.split(line)[1:]).command == "serve"


def test_the_python_service_stops_from_another_thread_and_ends_open_runs_incomplete(tmp_path):
    with socket.socket() as probe:  # a free port on 127.0.0.1; no proxy needs to be there
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    service = Service(address, tmp_path, "zarr", flush_interval=0.05)
    running = threading.Thread(target=service.run)
    running.start()
    record: list[tuple[str, dict]] = []
    RE = RunEngine({})
    RE.subscribe(lambda name, doc: record.append((name, doc)))
    RE(bp.count([det], 3))
    for name, doc in record[:-1]:  # every document but the stop, as the dispatcher hands them over
        service(name, doc)
    service.stop()
    service.stop()  # twice is once
    running.join(timeout=120)
    assert not running.is_alive()
    store = tmp_path / f"{record[0][1]['uid']}.zarr"
    assert _attrs(store)["status"] == "incomplete"
    published = [doc["data"]["det"] for name, doc in record if name == "event"]
    assert xr.open_zarr(store, group="primary").det.values.tolist() == published


def test_a_run_the_writer_refuses_is_logged_and_the_service_goes_on(tmp_path, caplog):
    caplog.set_level("INFO", logger="bluesky_zarr")
    service = Service("127.0.0.1:1", tmp_path, "zarr", file_prefix="same")  # run() never called
    RE = RunEngine({})
    RE.subscribe(service)
    first, second = RE(bp.count([det], 2)), RE(bp.count([det], 2))
    service.writer.close()
    said = [r.getMessage() for r in caplog.records]
    assert any(f"run {first[0]} stop: status success, 2 events" in line for line in said)
    assert any(f"run {second[0]}" in line and "exists already" in line for line in said)
    assert f"run {second[0]} stop: not written (see the error at its start)" in said
    assert _attrs(tmp_path / "same.zarr")["start"]  # the first run's, untouched
