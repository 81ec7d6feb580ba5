"""Every format: an output is never overwritten, a run without stop says so, disk errors name the path,
and what is flushed is readable while the scan runs."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from bluesky import preprocessors as bpp
from documents import events
from formats import assert_holds
from ophyd.sim import det, motor1, motor2
from stand_ins import FrameCounter

from bluesky_zarr import BlueskyZarrError, StoreExistsError, WriteError
from bluesky_zarr.devices import SimCamera


def files(directory: Path) -> dict[Path, bytes]:
    """Every file below ``directory`` with its bytes."""
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_an_existing_output_is_never_overwritten_unless_asked(RE, tmp_path, fmt):
    token = RE.subscribe(fmt.writer(tmp_path, file_prefix="sample"))
    (first,) = RE(bp.count([det], 1))
    before = files(tmp_path)
    output = re.escape(str(fmt.output(tmp_path, "sample")))
    with pytest.raises(
        StoreExistsError, match=rf"{output} exists already \(written by this writer for another run"
    ):
        RE(bp.count([det], 2))
    RE.unsubscribe(token)
    token = RE.subscribe(fmt.writer(tmp_path, file_prefix="sample"))
    existing = re.escape(str(tmp_path / fmt.existing("sample")))
    with pytest.raises(StoreExistsError, match=rf"{existing} exists already; nothing was written"):
        RE(bp.count([det], 2))
    assert files(tmp_path) == before  # nothing of the refused runs was written
    assert fmt.info(tmp_path, "sample").start["uid"] == first
    RE.unsubscribe(token)
    RE.subscribe(fmt.writer(tmp_path, file_prefix="sample", overwrite=True))
    (second,) = RE(bp.count([det], 2))
    assert fmt.info(tmp_path, "sample").start["uid"] == second
    assert len(fmt.readings(tmp_path, "sample").rows) == 2


def test_a_run_without_stop_is_marked_incomplete_when_the_writer_closes(record, RE, tmp_path, fmt):
    RE(bp.count([FrameCounter(), det], 3))
    writer = fmt.writer(tmp_path, file_prefix="open")
    for name, doc in record[:-1]:  # everything but the stop document
        writer(name, doc)
    writer.close()
    info = fmt.info(tmp_path, "open")
    assert info.status == "incomplete" and info.stop is None
    assert_holds(fmt.readings(tmp_path, "open"), events(record), ["cam", "det"])
    assert fmt.leftovers(tmp_path, "open") == []


def test_a_disk_error_surfaces_in_the_scan_with_the_path(RE, tmp_path, fmt):
    """Once the start document is written, the run's output is replaced by a file: no stream can be made."""
    writer = fmt.writer(tmp_path, file_prefix="run")
    output = fmt.output(tmp_path, "run")

    def block_the_output(name, doc):
        if name == "start":
            writer.flush()
            output.rename(tmp_path / "moved")
            output.write_text("not a directory")

    RE.subscribe(writer)
    RE.subscribe(block_the_output)
    with pytest.raises(BlueskyZarrError) as caught:
        RE(bp.count([det], 3))
    # the first error the writer raised in the scan, at the document after the descriptor (errors
    # about the events of the stream that could not be made follow it, at stop, and are what RE raises)
    first = [e for e in chain(caught.value) if isinstance(e, BlueskyZarrError)][-1]
    assert isinstance(first, WriteError)
    assert re.search(fmt.replaced_output_error(output), str(first)), str(first)
    assert not list((tmp_path / "moved").rglob(".*.partial"))  # nothing half-written is left


def chain(err: BaseException | None) -> list[BaseException]:
    """An exception and those it was raised while handling, the latest first."""
    out = []
    while err is not None:
        out.append(err)
        err = err.__context__
    return out


@pytest.mark.parametrize("worker", ["thread", "process"])
def test_a_read_only_directory_fails_the_run_at_its_start_naming_writer_format_and_path(
    RE, record, tmpfs, fmt, worker
):
    """Checked in the RunEngine's thread when the run starts, so that the stop document says
    ``fail`` before any event (the process worker used to find out only at the stop, which said
    ``success``), and its reason names the writer, the format and the output."""
    target = tmpfs("read-only", "ro,size=64k")
    writer = fmt.writer(target, file_prefix="run", worker=worker)
    RE.subscribe(writer)
    with pytest.raises(WriteError) as caught:
        RE(bp.count([det], 2))
    writer.close()
    message = str(caught.value)
    assert str(fmt.output(target, "run")) in message and "Read-only file system" in message
    assert f"{type(writer).__name__} ({writer.formats[0].label}): cannot write" in message
    stop = next(doc for name, doc in record if name == "stop")
    assert stop["exit_status"] == "fail" and stop["reason"] == message
    assert [name for name, _ in record].count("event") == 0  # refused before the first reading
    assert not list(target.iterdir())


def test_a_directory_this_process_may_not_write_fails_the_run_at_its_start(tmp_path, fmt):
    """A writer process without write permission (a user's account, not root): a real process."""
    target = tmp_path / "theirs"
    target.mkdir(mode=0o755)
    os.chown(tmp_path, 0, 0)
    tmp_path.chmod(0o755)
    script = f"""
import os, sys
sys.path[:0] = {sys.path!r}
from bluesky import RunEngine, plans as bp
from ophyd.sim import det
from formats import FORMATS
os.setgid(65534); os.setuid(65534)  # nobody, once what it runs is imported (root's home is closed)
fmt = next(f for f in FORMATS if f.name == {fmt.name!r})
RE = RunEngine({{}})
stops = []
RE.subscribe(lambda name, doc: stops.append(doc) if name == "stop" else None)
RE.subscribe(fmt.writer({str(target)!r}, file_prefix="run"))
try:
    RE(bp.count([det], 2))
except Exception as err:
    print("raised:", err)
print("stop:", stops[0]["exit_status"])
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "Permission denied" in done.stdout and "stop: fail" in done.stdout, done.stdout + done.stderr
    assert list(target.iterdir()) == []


def test_a_writer_subscribed_twice_leaves_the_run_to_the_first_and_the_scan_goes_on(
    RE, record, tmp_path, fmt, caplog
):
    first, second = fmt.writer(tmp_path), fmt.writer(tmp_path)
    RE.subscribe(first)
    RE.subscribe(second)
    (uid,) = RE(bp.count([det], 5))  # used to abort: the second found the first's output
    written = events(record)
    (again,) = RE(bp.count([det], 2))  # and the next run too
    first.close()
    second.close()
    assert (
        f"run {uid}: {type(first).__name__} writes the run's {first.formats[0].label} output" in caplog.text
    )
    assert fmt.info(tmp_path, uid).status == "success"
    assert_holds(fmt.readings(tmp_path, uid), written, ["det"])
    assert second.errors == [] and first.errors == []
    assert fmt.info(tmp_path, again).status == "success"


def test_every_flushed_reading_is_readable_while_the_scan_runs(RE, record, tmp_path, fmt):
    """After each event and a flush, a stock reader sees exactly the events so far, with their values."""
    writer = fmt.writer(tmp_path, file_prefix="live")
    seen = []

    def look(name, doc):
        if name == "event":
            writer.flush()
            seen.append(fmt.live_readings(tmp_path, "live"))

    RE.subscribe(writer)
    RE.subscribe(look)
    RE(bp.grid_scan([det], motor1, 0, 1, 3, motor2, 0, 1, 3))
    evs = events(record)
    assert len(seen) == len(evs) == 9
    for n, readings in enumerate(seen, start=1):
        assert_holds(readings, evs[:n], ["det"])
    assert_holds(fmt.readings(tmp_path, "live"), evs, ["det"])
    assert fmt.info(tmp_path, "live").status == "success"
    assert fmt.leftovers(tmp_path, "live") == []


@pytest.mark.parametrize("joined_after", ["start", "descriptor"])
def test_a_writer_that_joins_mid_run_reports_it_once_and_writes_the_next_run(
    record, RE, tmp_path, fmt, joined_after, caplog
):
    """A service subscribed after a run began: one warning for that run, never an error."""
    RE(bp.count([det], 5))
    RE(bp.count([det], 2))
    first_stop = next(i for i, (name, _) in enumerate(record) if name == "stop")
    names = [name for name, _ in record[: first_stop + 1]]
    skip = names.index(joined_after) + 1  # the documents the late writer never got
    writer = fmt.writer(tmp_path, file_prefix="{start[scan_id]}")
    for name, doc in record[skip:]:
        writer(name, doc)  # nothing raised
    writer.close()
    warned = [r.getMessage() for r in caplog.records if "never received" in r.getMessage()]
    assert len(warned) == 1 and "subscribed after the run began" in warned[0]
    assert writer.left_out == {record[0][1]["uid"]: first_stop + 1 - skip}  # each document counted
    second = record[first_stop + 1][1]
    assert_holds(fmt.readings(tmp_path, str(second["scan_id"])), events(record[first_stop + 1 :]), ["det"])
    assert fmt.info(tmp_path, str(second["scan_id"])).status == "success"


def dark_camera() -> SimCamera:
    """256 x 256 uint16 frames, 131 kB each."""
    return SimCamera(name="cam", shape=(256, 256), read_noise=0.0, dark_current=0.0, exposure_time=0.001)


def test_a_run_announced_larger_than_the_free_space_is_warned_of_before_its_first_event(
    RE, record, tmpfs, fmt, caplog
):
    target = tmpfs("small", "size=8m")
    writer = fmt.writer(target, file_prefix="run")
    RE.subscribe(writer)
    seen_at_first_event = []
    RE.subscribe(lambda name, doc: seen_at_first_event.append(caplog.text) if name == "event" else None)
    RE(bp.count([dark_camera()], 5, md={"num_points": 100}))  # announced: 13 MB; written: 0.7 MB
    writer.close()
    warned = re.compile(
        r"run \S+: stream 'primary' needs about 13\.1 MB \(100 events of 131\.\d kB, uncompressed, in 1 "
        rf"output\(s\)\) and {re.escape(str(fmt.output(target, 'run')))} has 8\.\d MB free; compression may "
        r"make it fit, so the scan goes on"
    )
    assert warned.search(seen_at_first_event[0]), caplog.text
    assert fmt.info(target, "run").status == "success"


def test_with_low_space_refuse_such_a_run_stops_before_its_first_event(RE, record, tmpfs, fmt):
    target = tmpfs("small", "size=8m")
    writer = fmt.writer(target, low_space="refuse")
    RE.subscribe(writer)
    with pytest.raises(
        WriteError, match=r"needs about 13\.1 MB .* the run was stopped before its first event"
    ) as caught:
        RE(bp.count([dark_camera()], 100))
    assert caught.value.errno == errno.ENOSPC
    assert f"{type(writer).__name__}: run " in str(caught.value)
    assert [name for name, _ in record].count("event") == 0
    stop = next(doc for name, doc in record if name == "stop")
    assert stop["exit_status"] == "fail" and "needs about 13.1 MB" in stop["reason"]
    assert fmt.info(target, stop["run_start"]).status == "fail"  # the store says so too
    (uid,) = RE(bp.count([det], 2))  # a run that fits is written
    writer.close()
    assert fmt.info(target, uid).status == "success"


def test_a_run_whose_stop_an_earlier_callback_kept_from_the_writer_is_named_and_ends_incomplete(
    RE, record, tmp_path, fmt, caplog
):
    failing = {"stop": True}

    def raises_at_stop(name, doc):
        if name == "stop" and failing["stop"]:
            raise RuntimeError("a callback that fails at the stop")

    RE.subscribe(raises_at_stop)  # before the writer: the RunEngine stops there, the writer gets no stop
    writer = fmt.writer(tmp_path)
    RE.subscribe(writer)
    with pytest.raises(RuntimeError, match="fails at the stop"):
        RE(bp.count([det], 3))
    orphan, first_run = record[0][1]["uid"], list(record)
    failing["stop"] = False
    (uid,) = RE(bp.count([det], 2))
    assert f"run {uid} starts while run(s) {orphan} have had no stop document" in caplog.text
    assert fmt.info(tmp_path, uid).status == "success"
    # while the writer lives, the output says so at once (an HDF5 file at the end: SWMR writes no
    # new attribute values)
    assert fmt.live_status(tmp_path, orphan) == ("running" if fmt.name == "hdf5" else "incomplete")
    writer.close()
    assert fmt.info(tmp_path, orphan).status == "incomplete"
    assert_holds(fmt.readings(tmp_path, orphan), events(first_run), ["det"])


def test_runs_that_overlap_on_purpose_end_as_their_stops_say_with_every_event(RE, record, tmp_path, fmt):
    """A plan that opens a run inside another (bluesky's run keys): the outer run is taken for
    unended while the inner one starts, and goes on when its next document comes."""

    @bpp.set_run_key_decorator("inner")
    @bpp.run_decorator(md={"which": "inner"})
    def inner():
        yield from bps.trigger_and_read([det])

    @bpp.set_run_key_decorator("outer")
    @bpp.run_decorator(md={"which": "outer"})
    def outer():
        yield from bps.trigger_and_read([det])
        yield from inner()
        yield from bps.trigger_and_read([det])  # the outer run's second event comes after the inner stop

    writer = fmt.writer(tmp_path)
    RE.subscribe(writer)
    RE(outer())
    writer.close()
    starts = {doc["which"]: doc["uid"] for name, doc in record if name == "start"}
    for which, uid in starts.items():
        assert fmt.info(tmp_path, uid).status == "success", which
        mine = [(n, d) for n, d in record if d.get("run_start", d.get("uid")) == uid or n == "event"]
        descriptors = {d["uid"] for n, d in record if n == "descriptor" and d["run_start"] == uid}
        run_events = [(n, d) for n, d in mine if n != "event" or d["descriptor"] in descriptors]
        assert_holds(fmt.readings(tmp_path, uid), events(run_events), ["det"])
    assert len(fmt.readings(tmp_path, starts["outer"]).rows) == 2
