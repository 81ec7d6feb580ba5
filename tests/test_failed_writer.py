"""A writer that failed is visible to code, even when the RunEngine swallows callback exceptions."""

from __future__ import annotations

import logging

import pytest
from bluesky import RunEngine
from bluesky import plans as bp
from stand_ins import BrokenCamera

from bluesky_zarr import BlueskyZarrError, DocumentError, ZarrWriter


@pytest.mark.parametrize("worker", ["thread", "process"])
def test_a_failure_swallowed_by_the_runengine_is_still_known_logged_and_raised_at_close(
    tmp_path, caplog, worker
):
    RE = RunEngine({}, call_returns_result=False)
    RE.ignore_callback_exceptions = True
    writer = ZarrWriter(tmp_path, on_error="raise", worker=worker)
    RE.subscribe(writer)
    with (
        caplog.at_level(logging.ERROR, logger="bluesky_zarr"),
        pytest.warns(UserWarning, match="The error will be ignored"),  # bluesky's word for it
    ):
        (uid,) = RE(bp.count([BrokenCamera()], 5))  # the scan runs to its end
    assert writer.failed
    assert isinstance(writer.errors[0], DocumentError) and "data key 'cam'" in str(writer.errors[0])
    logged = [r for r in caplog.records if r.name == "bluesky_zarr" and r.levelno == logging.ERROR]
    assert logged and uid in logged[0].getMessage()
    with pytest.raises(BlueskyZarrError, match=r"error\(s\) were raised in the scan .*writer.errors"):
        writer.close()
    writer.close()  # once


def test_a_writer_that_never_failed_says_so(tmp_path, RE):
    writer = ZarrWriter(tmp_path)
    RE.subscribe(writer)
    RE(bp.count([BrokenCamera()], 3))  # quarantined readings are no failure of the writer
    writer.close()
    assert not writer.failed and writer.errors == []
