"""Arrow IPC is live: another process follows a running scan, batch by batch, until its stop."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
from bluesky import plans as bp
from ophyd.sim import det, motor1
from processes import child_environment
from tables import batches_with_metadata, read_arrows

from bluesky_zarr import ArrowWriter

ROOT = Path(__file__).parent.parent
FOLLOWER = ROOT / "examples" / "follow_arrow_stream.py"

STEP = 4
STEPPED_SCAN = textwrap.dedent(
    """
    import sys
    from bluesky import RunEngine, plans as bp
    from ophyd.sim import det, motor1
    from stand_ins import FrameCounter
    from bluesky_zarr import ArrowWriter

    STEP = int(sys.argv[3])
    RE = RunEngine({})
    RE.subscribe(ArrowWriter(sys.argv[1], file_prefix="live", flush_interval=0.05))

    def step(name, doc):
        if name == "event" and doc["seq_num"] % STEP == 0:
            sys.stdin.readline()  # the next events only once the test says so

    RE.subscribe(step)
    RE(bp.scan([det, FrameCounter(shape=(8, 8))], motor1, 0, 1, int(sys.argv[2])))
    """
)


def start_scan(directory: Path, events: int) -> subprocess.Popen[str]:
    """A scan that waits after every STEP-th event until it reads a line on stdin."""
    env = child_environment()
    return subprocess.Popen(
        [sys.executable, "-c", STEPPED_SCAN, str(directory), str(events), str(STEP)],
        stdin=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_another_process_follows_the_scan_while_it_runs(tmp_path):
    """The scan waits after every STEP-th event until the follower has printed it: every row is read
    while the scan runs, with no sleep on either side."""
    stream = tmp_path / "live" / "primary.arrows"
    follower = subprocess.Popen(
        [sys.executable, str(FOLLOWER), str(stream), "--idle", "20"], stdout=subprocess.PIPE, text=True
    )
    scan = start_scan(tmp_path, 40)
    assert follower.stdout is not None and scan.stdin is not None
    try:
        header = follower.stdout.readline()
        assert "stream primary" in header and "(scan)" in header
        rows, while_running = [], 0
        for line in follower.stdout:
            if line.startswith("stop:"):
                assert "exit_status=success, status=success" in line
                break
            rows.append(json.loads(line))
            while_running += scan.poll() is None
            if rows[-1]["seq_num"] % STEP == 0:
                scan.stdin.write("go on\n")
                scan.stdin.flush()
        assert [r["seq_num"] for r in rows] == list(range(1, 41))
        assert "cam" not in rows[0] and rows[0]["det"] == 1.0
        assert while_running == len(rows)  # every row was read before the scan had ended
        assert follower.wait(timeout=20) == 0
        assert scan.wait(timeout=20) == 0
    finally:
        for proc in (follower, scan):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()


def test_a_stream_cut_short_keeps_every_whole_batch(killed):
    """The stream of a SIGKILLed writer (processes.kill_after_flush) reads batch by batch, and the
    follower example reads the same rows."""
    stream = killed("arrow") / "crash" / "primary.arrows"
    seq = []
    with pa.ipc.open_stream(stream) as reader:  # no end-of-stream marker: read batch by batch
        while True:
            try:
                batch = reader.read_next_batch()
            except (StopIteration, pa.ArrowInvalid):
                break
            seq += batch.column("seq_num").to_pylist()
    assert len(seq) >= 30 and seq == list(range(1, len(seq) + 1))
    sys.path.insert(0, str(FOLLOWER.parent))
    try:
        from follow_arrow_stream import follow, open_growing_stream
    finally:
        sys.path.remove(str(FOLLOWER.parent))
    followed = [b.num_rows for b, _ in follow(open_growing_stream(stream, idle=0.2))]
    assert sum(followed) == len(seq)


def test_batches_come_every_batch_rows_and_at_every_flush(RE, record, tmp_path):
    writer = ArrowWriter(tmp_path, file_prefix="b", batch_rows=3)
    RE.subscribe(writer)

    def flush_after_the_fourth(name, doc):
        if name == "event" and doc["seq_num"] == 4:
            writer.flush()

    RE.subscribe(flush_after_the_fourth)
    RE(bp.scan([det], motor1, 0, 1, 8))
    batches = batches_with_metadata(tmp_path / "b" / "primary.arrows")
    sizes = [b.num_rows for b, _ in batches]
    assert sum(sizes) == 8 and max(sizes) <= 3 and sizes[-1] == 0
    assert read_arrows(tmp_path / "b" / "primary.arrows").polars["seq_num"].to_list() == list(range(1, 9))
