"""Crash isolation of ``worker="process"``, with real signals: either process killed (SIGKILL), or
ended (SIGTERM, SIGINT), mid-scan. The run never stays ``running`` once its writer is gone (but for a
SIGKILLed writer process, which ``finalize`` finishes), what was written stays readable by stock
readers, no process is left behind and no shared-memory segment either."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from processes import interrupted_session, process_scan
from stock import open_stream, root_attrs

from bluesky_zarr import finalize

HELD = 30


def gone(pid: int) -> bool:
    """Whether a process has ended (a zombie, not yet reaped by its parent, has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def no_segments(pid: int) -> bool:
    return not [name for name in os.listdir("/dev/shm") if name.startswith(f"bluesky_zarr_{pid}_")]


def written(store: Path) -> np.ndarray:
    ds = open_stream(store)
    return np.sort(ds.seq_num.values[ds.written.values])


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=lambda s: s.name)
def test_acquisition_process_killed_the_writer_process_drains_the_ring_and_ends_the_run(
    tmp_path: Path, sig: signal.Signals
) -> None:
    with process_scan(tmp_path, HELD) as proc:
        assert proc.stdout is not None
        _, pid, held = proc.stdout.readline().split()
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == -sig
        assert proc.stdout.read() == ""  # end of file: the writer process, which shares it, has exited
    assert gone(int(pid))
    store = tmp_path / "crash.zarr"
    assert root_attrs(store)["status"] == "incomplete"
    np.testing.assert_array_equal(written(store), np.arange(1, int(held) + 1))  # every event in the ring
    assert no_segments(proc.pid)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_writer_process_killed_the_next_document_raises_in_the_scan(
    tmp_path: Path, sig: signal.Signals
) -> None:
    with process_scan(tmp_path, HELD) as proc:
        assert proc.stdout is not None and proc.stdin is not None
        _, pid, _ = proc.stdout.readline().split()
        os.kill(int(pid), sig)
        proc.stdin.write("go on\n")
        proc.stdin.flush()
        said = proc.stdout.read()
        assert proc.wait(timeout=60) == 0
    said, again = said.splitlines()
    assert again.startswith(
        f"raised WriterProcessError ZarrWriter: the writer process (pid {pid}) is gone"
    ), again
    assert said.startswith(f"raised WriterProcessError ZarrWriter: the writer process (pid {pid})"), said
    store = tmp_path / "crash.zarr"
    assert str(store) in said
    assert gone(int(pid))
    assert no_segments(proc.pid)
    if sig == signal.SIGKILL:
        assert "was killed by SIGKILL" in said
        assert root_attrs(store)["status"] == "running"  # nobody was left to say otherwise
        assert written(store).size > 0  # what was written stays readable
        finalize(store)
    else:
        assert f"ended on {sig.name}" in said
    assert root_attrs(store)["status"] == "incomplete"
    np.testing.assert_array_equal(written(store), np.arange(1, written(store).size + 1))


def test_a_session_interrupted_with_sigint_ends_its_run_incomplete(tmp_path: Path) -> None:
    with interrupted_session(tmp_path) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        _, pid = proc.stdout.readline().split()
        proc.send_signal(signal.SIGINT)
        assert (
            proc.wait(timeout=60) == -signal.SIGINT
        )  # what Python does on a KeyboardInterrupt it did not catch
        assert "KeyboardInterrupt" in proc.stderr.read()
    assert gone(int(pid))
    assert no_segments(proc.pid)
    store = tmp_path / "crash.zarr"
    assert root_attrs(store)["status"] == "incomplete"
    np.testing.assert_array_equal(open_stream(store).seq_num.values, np.arange(1, 6))  # 1-D: no grid
