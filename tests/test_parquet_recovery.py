"""Parquet is crash safe: finalize_parquet finishes a killed writer's parts; a full disk keeps earlier parts;
a crash while combining parts loses nothing. (What every format shares is in tests/conformance.)"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from bluesky import plans as bp
from documents import events
from ophyd.sim import det
from processes import FLUSHED
from stand_ins import FrameCounter
from tables import read_parquet

from bluesky_zarr import ParquetWriter, WriteError, finalize_parquet


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
    ballast.write_bytes(os.urandom(600 * 1024))  # noise: it does not compress
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
