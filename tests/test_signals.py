"""SIGTERM and SIGINT of a process writing a scan, at random moments, in every format: the open run
ends ``incomplete`` (never ``running``), every event it holds is one that was taken, and the
process ends as it would have without the writer (SIGTERM: by the signal, or as the process's own
handler says)."""

from __future__ import annotations

import random
import signal
import textwrap

import numpy as np
import pytest
from formats import FORMATS
from processes import kill_at

WITH_STATUS = [f for f in FORMATS if f.name != "csv"]  # CSV holds no run metadata


def check(directory, fmt):
    readings = fmt.readings(directory, "crash")
    seq = sorted(readings.seq_nums())
    assert seq, "nothing was written before the signal"
    np.testing.assert_array_equal(seq, np.arange(1, len(seq) + 1))
    if fmt in WITH_STATUS:
        assert fmt.info(directory, "crash").status == "incomplete"


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_sigterm_finishes_the_open_run_and_the_process_ends_by_it(tmp_path, fmt):
    delay = random.uniform(0.05, 1.0)
    code = kill_at(tmp_path, fmt.name, delay, signal.SIGTERM)
    assert code == -signal.SIGTERM, (delay, code)
    check(tmp_path, fmt)


OWN_HANDLER = textwrap.dedent(
    """
    import signal, sys
    def _own(signum, frame):
        print("own handler", flush=True)
        sys.exit(3)
    signal.signal(signal.SIGTERM, _own)
    """
)


@pytest.mark.parametrize("fmt", ["zarr", "parquet", "hdf5"])
def test_sigterm_chains_to_the_process_own_handler(tmp_path, fmt):
    """The process's own SIGTERM handler still runs (here it exits with status 3), and the run is
    finished all the same."""
    (output,) = [f for f in FORMATS if f.name == fmt]
    code = kill_at(tmp_path, fmt, random.uniform(0.05, 1.0), signal.SIGTERM, handler=OWN_HANDLER)
    assert code == 3
    check(tmp_path, output)


@pytest.mark.parametrize("fmt", ["zarr", "arrow"])
def test_sigint_ends_the_run_incomplete(tmp_path, fmt):
    """Ctrl-C of a script: the RunEngine stops the scan, the interpreter exits, the run is finished."""
    (output,) = [f for f in FORMATS if f.name == fmt]
    kill_at(tmp_path, fmt, random.uniform(0.05, 1.0), signal.SIGINT)
    check(tmp_path, output)
