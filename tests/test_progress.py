"""The progress display, ``Writer(..., progress=...)``: points taken of ``num_points``, the rate, the
time left, and how far the writer lags behind the RunEngine, drawn by tqdm from a thread of its own."""

from __future__ import annotations

import io
import re
import threading

from bluesky import plan_stubs as bps
from bluesky import plans as bp
from bluesky import preprocessors as bpp
from ophyd.sim import NumpySeqHandler, det, hw, motor1, motor2

from bluesky_zarr import Writer, ZarrWriter


def lines(drawn: io.StringIO) -> list[str]:
    """The states the bar was drawn in, in order (tqdm redraws a line with carriage returns)."""
    return [line.strip() for line in re.split(r"[\r\n]", drawn.getvalue()) if line.strip()]


def test_a_grid_scan_shows_its_points_rate_and_the_writer_caught_up(RE, tmp_path):
    drawn = io.StringIO()
    writer = ZarrWriter(tmp_path, progress=drawn)
    RE.subscribe(writer)
    RE(bp.grid_scan([det], motor1, 0, 1, 5, motor2, 0, 1, 8))
    RE(bp.count([det], 3))
    writer.close()
    drawn_lines = lines(drawn)
    grid = [line for line in drawn_lines if "(grid_scan)" in line]
    assert grid[-1].startswith("scan 1 (grid_scan): 100%")
    assert "40/40" in grid[-1] and "pt/s" in grid[-1] and "written 40, writer 0 behind" in grid[-1]
    count = [line for line in drawn_lines if "(count)" in line]
    assert "3/3" in count[-1] and "written 3, writer 0 behind" in count[-1]
    assert drawn_lines.index(grid[-1]) < drawn_lines.index(count[0])  # one bar after the other


def test_a_run_without_num_points_counts_points_without_a_total(RE, tmp_path):
    @bpp.run_decorator(md={"plan_name": "open_ended"})
    def open_ended():
        for _ in range(7):
            yield from bps.trigger_and_read([det])

    drawn = io.StringIO()
    with Writer(tmp_path, "parquet", progress=drawn) as writer:
        RE.subscribe(writer)
        RE(open_ended())
    last = lines(drawn)[-1]
    assert "(open_ended)" in last and "7pt" in last and "%" not in last and "written 7" in last


def test_the_lag_shows_while_the_writer_is_behind(RE, tmp_path):
    """Frames read from ophyd.sim's detector files by a slow handler: the writer falls behind the
    RunEngine (which never waits for it), the bar says by how much, and it catches up at the stop."""
    slow = threading.Event()

    class SlowNumpySeqHandler(NumpySeqHandler):  # a file system that answers slowly
        def __call__(self, *args, **kwargs):
            slow.wait(0.05)
            return super().__call__(*args, **kwargs)

    (tmp_path / "frames").mkdir()
    h = hw(save_path=str(tmp_path / "frames"))
    drawn = io.StringIO()
    writer = ZarrWriter(tmp_path / "out", handler_registry={"NPY_SEQ": SlowNumpySeqHandler}, progress=drawn)
    RE.subscribe(writer)
    RE(bp.count([h.img], 40))
    writer.close()
    behind = [int(m.group(1)) for m in map(re.compile(r"writer (\d+) behind").search, lines(drawn)) if m]
    assert max(behind) > 0 and behind[-1] == 0, behind
    assert "written 40, writer 0 behind" in lines(drawn)[-1]
