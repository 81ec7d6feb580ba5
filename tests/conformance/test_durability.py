"""Every format: at a run's stop every file and folder it wrote is fsynced (a whole file written
under a temporary name is fsynced before it is renamed into place); an fsync that fails (a real
``EIO``, injected into the writing process's own syscall by strace, at a random one of them) is
raised naming the file, fails the run, is never retried on the same file, and costs no reading:
every event the RunEngine emitted reads back with stock readers. Only an fsync in the run's last
step, of what holds its status, leaves the status as it was written (the data was durable before)."""

from __future__ import annotations

import pickle
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from documents import events
from formats import assert_holds

from bluesky_zarr import finalize

STRACE = shutil.which("strace")
pytestmark = pytest.mark.skipif(
    STRACE is None, reason="strace fails a real fsync here (make test installs it)"
)

SCAN = """
import pickle, sys
sys.path[:0] = {path!r}
from bluesky import RunEngine, plans as bp
from ophyd.sim import det, motor
from formats import FORMATS
fmt = next(f for f in FORMATS if f.name == {name!r})
RE = RunEngine({{}})
documents = []
RE.subscribe(lambda name, doc: documents.append((name, doc)))
writer = fmt.writer({directory!r}, file_prefix="run")
RE.subscribe(writer)
try:
    RE(bp.scan([det], motor, -1, 1, 20))
except Exception as err:
    print("raised:", err)
try:
    writer.close()
except Exception as err:
    print("closed:", err)
with open({documents!r}, "wb") as file:
    pickle.dump(documents, file)
"""

STATUS_FILES = {"zarr.json", "run.h5", "primary.arrows", ".primary.parquet.partial", "._finish.json.partial"}
"""What holds a run's status in each format: the run's data is durable before they are written."""

_CALL = re.compile(
    r"^(?P<pid>\d+) +f(?:data)?sync\(\d+<(?P<path>[^>]*)>(?:\)\s+= (?P<result>.*)| <unfinished \.\.\.>)$"
)
_RESUMED = re.compile(r"^(?P<pid>\d+) +<\.\.\. f(?:data)?sync resumed>\)\s+= (?P<result>.*)$")


def _fsyncs(trace: str) -> list[tuple[str, str]]:
    """``(path, result)`` of each fsync in an strace log, in order; a call another thread
    interrupted (``<unfinished ...>``, then ``<... fsync resumed>``) is put back together."""
    calls: list[tuple[str, str]] = []
    waiting: dict[str, int] = {}
    for line in trace.splitlines():
        if call := _CALL.match(line):
            calls.append((call["path"], call["result"] or ""))
            if call["result"] is None:
                waiting[call["pid"]] = len(calls) - 1
        elif (resumed := _RESUMED.match(line)) and resumed["pid"] in waiting:
            k = waiting.pop(resumed["pid"])
            calls[k] = (calls[k][0], resumed["result"])
    return calls


def scan_under_strace(
    tmp_path: Path, fmt, fail_at: int | None = None
) -> tuple[str, list[tuple[str, str]], list]:
    """Run a scan in a real process under strace; its output, its fsyncs ``(path, result)`` in
    order, and the documents its RunEngine emitted. ``fail_at``: the fsync that fails with EIO."""
    tmp_path.mkdir(exist_ok=True)
    directory, trace, documents = tmp_path / "data", tmp_path / "trace", tmp_path / "documents.pickle"
    script = SCAN.format(path=sys.path, name=fmt.name, directory=str(directory), documents=str(documents))
    command = [str(STRACE), "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync", "-o", str(trace)]
    if fail_at is not None:
        command += ["-e", f"inject=fsync,fdatasync:error=EIO:when={fail_at}"]
    done = subprocess.run(
        [*command, sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert documents.exists(), done.stdout + done.stderr
    fsyncs = _fsyncs(trace.read_text())
    assert fsyncs, f"strace saw no fsync:\n{trace.read_text()[-3000:]}\n{done.stdout}\n{done.stderr[-3000:]}"
    return done.stdout, fsyncs, pickle.loads(documents.read_bytes())


_CLEAN: dict[str, int] = {}
"""format name -> how many fsyncs a clean run of the scan makes"""


def test_every_file_and_folder_of_a_run_is_fsynced_by_its_stop(tmp_path, fmt):
    out, fsyncs, _ = scan_under_strace(tmp_path, fmt)
    _CLEAN[fmt.name] = len(fsyncs)
    assert "raised" not in out and "closed" not in out, out
    synced = {re.sub(r"/\.([^/]+)\.partial$", r"/\1", path) for path, result in fsyncs if result == "0"}
    output = fmt.output(tmp_path / "data", "run")
    written = {str(p) for p in [output, *(output.rglob("*") if output.is_dir() else [])]}
    assert written - synced == set()
    assert str(output.parent) in synced  # the folder that names the output


@pytest.mark.parametrize("seed", range(2))
def test_an_eio_at_a_random_fsync_fails_the_run_by_name_and_costs_no_reading(tmp_path, fmt, seed):
    if fmt.name not in _CLEAN:
        _CLEAN[fmt.name] = len(scan_under_strace(tmp_path / "clean", fmt)[1])
    fail_at = random.Random(f"{fmt.name}-{seed}").randint(1, _CLEAN[fmt.name])
    out, fsyncs, documents = scan_under_strace(tmp_path, fmt, fail_at)
    failed = [i for i, (_, result) in enumerate(fsyncs) if "INJECTED" in result]
    assert len(failed) == 1, fsyncs
    path = fsyncs[failed[0]][0]
    assert (
        "Input/output error" in out and path.rsplit("/", 1)[-1].removesuffix(".partial").lstrip(".") in out
    ), out
    if not path.endswith(".partial"):  # a temporary file is a new file each time it is made
        assert path not in {p for p, _ in fsyncs[failed[0] + 1 :]}, "an fsync that failed was retried"
    directory = tmp_path / "data"
    if fmt.leftovers(directory, "run"):  # parts not merged: the disk works again, so finish them
        finalize(fmt.output(directory, "run"))
    info = fmt.info(directory, "run")
    if info.status != "fail":  # only the last step, syncing what holds the status, may not say so
        assert Path(path).is_dir() or Path(path).name in STATUS_FILES, (path, info)
    else:
        assert any("Input/output error" in e for e in info.errors), info
    assert_holds(fmt.readings(directory, "run"), events(documents), ["det"])
