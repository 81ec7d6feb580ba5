"""Parquet is crash safe: finalize_parquet finishes a killed writer's parts; a full disk keeps earlier parts;
a crash while combining parts loses nothing and shows no row twice; data parts keep their footers
small. (What every format shares is in tests/conformance.)"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bluesky import plans as bp
from documents import events
from ophyd.sim import det, motor
from processes import FLUSHED, child_environment
from stand_ins import FrameCounter
from tables import read_parquet

from bluesky_zarr import (
    ParquetWriter,
    RunNotFoundError,
    WriteError,
    finalize,
    finalize_parquet,
    inspect_run,
    live_parquet_parts,
)


def test_finalize_parquet_finishes_a_killed_run_once(killed):
    """The parts of a SIGKILLed writer (processes.kill_after_flush), before and after finalize_parquet."""
    run = killed("parquet") / "crash"
    parts = run / "primary.parquet.parts"
    assert not (run / "primary.parquet").exists()
    # what a reader sees before anyone finishes the run: every part whole, with polars' own glob
    before = pl.scan_parquet(parts / "*.parquet").collect()
    assert before.height >= FLUSHED
    kept = shutil.copytree(parts, run.parent / "kept-parts")

    assert finalize_parquet(run) == [run / "primary.parquet"]
    assert not parts.exists()
    views = read_parquet(run / "primary.parquet")
    seq = views.polars["seq_num"].to_list()
    assert seq == list(range(1, len(seq) + 1)) and len(seq) == before.height
    frames = views.columns("cam")
    for reader, values in frames.items():  # the camera's first frame is taken at creation
        np.testing.assert_array_equal(values[:, 0, 0], np.asarray(seq) + 1, err_msg=reader)
    assert views.pandas["motor2_index"].tolist()[:12] == [*range(10), 0, 1]
    metadata = views.metadata()
    assert metadata["status"] == "incomplete" and "stop" not in metadata
    assert metadata["start"]["plan_name"] == "grid_scan"
    assert metadata["finalized"]["by"] == "bluesky_zarr.finalize"

    # a second call has nothing to do; parts left over from a merge that had finished are removed
    shutil.copytree(kept, parts)
    assert finalize_parquet(run) == []
    assert not parts.exists() and read_parquet(run / "primary.parquet").num_rows == len(seq)


@pytest.fixture
def small_disk(tmpfs) -> Path:
    """A real 1 MiB tmpfs: a disk that fills up (needs the right to mount; skipped without it)."""
    return tmpfs("small-disk", "size=1m")


def test_a_full_disk_keeps_earlier_parts_and_says_where(RE, record, small_disk):
    ballast = small_disk / "ballast"
    ballast.write_bytes(os.urandom(900 * 1024))  # noise: it does not compress
    cam = FrameCounter(shape=(64, 64))
    RE.subscribe(ParquetWriter(small_disk, file_prefix="full", compression="none", batch_rows=2))
    with pytest.raises(
        WriteError, match=r"cannot write .*full/primary\.parquet\.parts/part-\d+\.parquet.*No space"
    ) as caught:
        RE(bp.count([cam, det], 100))
    assert any("finalize_parquet(" in note for note in caught.value.__notes__)  # says what to do
    parts = small_disk / "full" / "primary.parquet.parts"
    flushed = sorted(parts.glob("part-*.parquet"))
    assert 2 < len(flushed) < 50
    rows = [seq for p in flushed for seq in pq.read_table(p).column("seq_num").to_pylist()]
    assert rows == list(range(1, len(rows) + 1))  # every part is whole, in order
    assert not list(parts.glob(".*.partial"))  # the failed write left nothing half-done

    ballast.unlink()  # space again: finish the run from its parts
    (final,) = finalize_parquet(small_disk / "full")
    views = read_parquet(final)
    assert views.polars["seq_num"].to_list() == rows
    evs = {e["seq_num"]: e for e in events(record)}
    np.testing.assert_array_equal(
        views.columns("cam")["pyarrow"], np.stack([evs[s]["data"]["cam"] for s in rows])
    )
    assert views.metadata()["status"] in {"fail", "incomplete"}


def test_small_parts_are_combined_and_a_crash_while_combining_loses_nothing(RE, tmp_path):
    writer = ParquetWriter(tmp_path, file_prefix="slow", batch_rows=1)
    RE.subscribe(writer)
    snapshots = []

    def look(name, doc):
        if name == "event":
            writer.flush()
            parts = tmp_path / "slow" / "primary.parquet.parts"
            names = sorted(p.name for p in parts.iterdir())
            rows = pl.scan_parquet(parts / "*.parquet").collect()["seq_num"].to_list()
            snapshots.append((names, rows))

    RE.subscribe(look)
    RE(bp.count([det], 150))
    for _, rows in snapshots:  # at every moment each row is there once, in order
        assert rows == list(range(1, len(rows) + 1))
    names, _ = snapshots[-1]
    assert "part-000001-000064.parquet" in names and "part-000065-000128.parquet" in names
    assert len(names) < 30
    assert read_parquet(tmp_path / "slow" / "primary.parquet").polars["seq_num"].to_list() == list(
        range(1, 151)
    )

    # the state a crash in the middle of combining leaves: the combined part under its hidden name
    # beside some of the parts it holds; finalize uses it and not them
    run = tmp_path / "crashed"
    parts = run / "primary.parquet.parts"
    parts.mkdir(parents=True)
    table = pq.read_table(tmp_path / "slow" / "primary.parquet")
    for n in range(1, 5):
        pq.write_table(table.slice(n - 1, 1), parts / f"part-{n:06d}.parquet")
    pq.write_table(table.slice(0, 4), parts / ".combined-000001-000004.parquet")
    (parts / "part-000001.parquet").unlink()
    pq.write_table(table.slice(4, 1), parts / "part-000005.parquet")
    (final,) = finalize_parquet(run)
    assert read_parquet(final).polars["seq_num"].to_list() == [1, 2, 3, 4, 5]


KILLED_IN_THE_WRITER = textwrap.dedent(
    """
    import os, pathlib, signal, sys
    from bluesky import RunEngine, plans as bp
    from ophyd.sim import det, motor
    from bluesky_zarr import ParquetWriter

    directory, when, name = sys.argv[1:4]
    # the process SIGKILLs itself at one step of the writing, whatever else it is doing then
    def killed_at(original):
        def call(*args, **kwargs):
            if pathlib.Path(args[0]).name == name:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(*args, **kwargs)
        return call
    if when == "rename":
        os.replace = killed_at(os.replace)
    else:
        pathlib.Path.unlink = killed_at(pathlib.Path.unlink)
    RE = RunEngine({})
    writer = ParquetWriter(directory, file_prefix="killed", batch_rows=1)
    RE.subscribe(writer)
    RE.subscribe(lambda name, doc: name == "event" and writer.flush())
    RE(bp.scan([det], motor, 0, 1, 100, md={"notes": ["a sample's notes " * 64] * 20}))
    """
)


def killed_in_the_writer(directory: Path, when: str, name: str) -> Path:
    """The run directory of a scan whose writer process SIGKILLed itself as it was about to rename
    (``when="rename"``) or delete (``"delete"``) the file ``name``."""
    args = [sys.executable, "-c", KILLED_IN_THE_WRITER, str(directory), when, name]
    done = subprocess.run(args, env=child_environment(), capture_output=True, timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    return directory / "killed"


def read_everywhere(paths: list[Path]) -> dict[str, list[int]]:
    """The seq_nums of a list of Parquet files by pyarrow, polars and duckdb."""
    files = [str(p) for p in paths]
    return {
        "pyarrow": pa.concat_tables([pq.read_table(f) for f in files])["seq_num"].to_pylist(),
        "polars": pl.scan_parquet(files).collect()["seq_num"].to_list(),
        "duckdb": [r[0] for r in duckdb.sql(f"select seq_num from read_parquet({files!r})").fetchall()],
    }


def test_a_run_killed_before_its_schema_part_was_renamed_finalizes_with_its_columns(tmp_path):
    """Killed with part 0 (the schema, no rows) whole but not yet renamed: the stream's columns and
    documents are known, and the finished file has them with 0 rows, for every reader."""
    run = killed_in_the_writer(tmp_path, "rename", ".part-000000.parquet.partial")
    assert [p.name for p in (run / "primary.parquet.parts").iterdir()] == [".part-000000.parquet.partial"]
    (done,) = finalize(run)
    assert done.changed and done.status == "incomplete" and "part-000000.parquet" in " ".join(done.notes)
    final = run / "primary.parquet"
    columns = ["time", "seq_num", "det", "motor", "motor_setpoint"]
    assert pq.read_schema(final).names == columns
    assert duckdb.sql(f"select * from '{final}'").columns == columns
    assert duckdb.sql(f"select count(*) from '{final}'").fetchone() == (0,)
    assert pl.read_parquet(final).columns == columns and pl.read_parquet(final).height == 0
    metadata = read_parquet(final).metadata()
    assert metadata["start"]["plan_name"] == "scan" and metadata["status"] == "incomplete"


def test_a_run_killed_while_writing_its_schema_part_leaves_no_file_and_says_so(tmp_path):
    """Part 0 cut short (as a crash before it reached the disk leaves it): nothing says what the
    stream held, so no file is made, and finalize says why."""
    run = killed_in_the_writer(tmp_path, "rename", ".part-000000.parquet.partial")
    torn = run / "primary.parquet.parts" / ".part-000000.parquet.partial"
    torn.write_bytes(torn.read_bytes()[: torn.stat().st_size // 2])
    (done,) = finalize(run)
    assert not done.changed and done.status == "empty"
    assert "no part of stream 'primary' was whole" in done.notes[0] and "no primary.parquet" in done.notes[0]
    assert not (run / "primary.parquet").exists() and not (run / "primary.parquet.parts").exists()
    assert finalize_parquet(run) == []


def test_a_kill_while_combining_parts_never_shows_a_row_twice_or_misses_one(tmp_path):
    """Killed after the combined part 1-64 was renamed into place, while deleting the parts it holds:
    the documented way to read a live run (live_parquet_parts) holds each row once, and so does the
    finished file (a plain ``*.parquet`` glob reads rows 32-64 twice until then)."""
    run = killed_in_the_writer(tmp_path, "delete", "part-000032.parquet")
    parts = run / "primary.parquet.parts"
    names = sorted(p.name for p in parts.iterdir())
    assert "part-000001-000064.parquet" in names and "part-000032.parquet" in names
    assert "part-000031.parquet" not in names
    for reader, seq in read_everywhere(live_parquet_parts(run)).items():
        assert seq == list(range(1, 65)), reader
    (final,) = finalize_parquet(run)
    assert read_everywhere([final])["duckdb"] == list(range(1, 65))
    assert live_parquet_parts(run) == [final]


def test_readers_of_a_live_run_see_each_row_once_at_every_moment(RE, tmp_path):
    """A reader in another thread reads the live parts over and over while parts are combined."""
    writer = ParquetWriter(tmp_path, file_prefix="live", batch_rows=1)
    RE.subscribe(writer)
    RE.subscribe(lambda name, doc: name == "event" and writer.flush())
    seen: list[list[int]] = []
    done = threading.Event()

    def follow() -> None:
        while not done.is_set():
            try:
                parts = [str(p) for p in live_parquet_parts(tmp_path / "live")]
                seen.append(pl.scan_parquet(parts).collect()["seq_num"].to_list() if parts else [])
            except (FileNotFoundError, RunNotFoundError, pl.exceptions.ComputeError):
                continue  # a part combined between the listing and the reading: ask again

    reader = threading.Thread(target=follow)
    reader.start()
    try:
        RE(bp.count([det], 200))
    finally:
        done.set()
        reader.join()
    lengths = {len(rows) for rows in seen}
    assert min(lengths) < 64 < max(lengths)  # it read before and after parts were combined
    for rows in seen:
        assert rows == list(range(1, len(rows) + 1))


def test_data_parts_hold_a_small_metadata_that_names_the_schema_part(RE, tmp_path):
    """The start document and descriptors are in the schema part and the merged file only."""
    writer = ParquetWriter(tmp_path, file_prefix="small", batch_rows=10)
    RE.subscribe(writer)
    footers: dict[str, tuple[int, dict]] = {}

    def look(name, doc):
        if name == "event" and doc["seq_num"] == 45:
            writer.flush()
            folder = tmp_path / "small" / "primary.parquet.parts"
            for part in sorted(folder.glob("part-*.parquet")):
                footers[part.name] = (pq.read_metadata(part).serialized_size, read_parquet(part).metadata())
            info = inspect_run(tmp_path / "small")  # an unfinished run's summary finds the documents
            assert info["plan_name"] == "scan" and info["streams"]["primary"]["rows"] == 45

    RE.subscribe(look)
    RE(bp.scan([det], motor, 0, 1, 50, md={"notes": ["a sample's notes " * 64] * 20}))
    schema_size, schema_metadata = footers.pop("part-000000.parquet")
    assert schema_metadata["start"]["plan_name"] == "scan" and schema_size > 40_000
    assert len(footers) == 5
    for size, metadata in footers.values():
        assert size < 4_000 and "start" not in metadata and "descriptors" not in metadata
        assert metadata["schema_part"] == "part-000000.parquet" and metadata["status"] == "running"
    final = read_parquet(tmp_path / "small" / "primary.parquet")
    assert final.metadata()["start"]["notes"][0].startswith("a sample's notes")
    assert "schema_part" not in final.metadata() and final.num_rows == 50
