"""Writing into a bucket through a proxy that fails requests: passing faults are survived, an outage
fails the run loudly, naming bucket and key, and no credential is left anywhere.

The proxy (``s3.fault_proxy``) stands on 127.0.0.1 between the writer and the moto server, and
answers chosen requests with HTTP 503 or drops their connection without an answer.
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import xarray as xr
from bluesky import RunEngine
from bluesky import plans as bp
from ophyd.sim import det, motor1, motor2
from s3 import SECRET, Faults, every_object, fault_proxy, feed, fsspec_store, grid_run
from stand_ins import FrameCounter

from bluesky_zarr import (
    BlueskyZarrError,
    ParquetWriter,
    WriteError,
    Writer,
    Zarr,
    ZarrWriter,
    finalize_spool,
)

FAST_RETRIES = {"max_retries": 4, "init_backoff": 0.01, "max_backoff": 0.05, "retry_timeout": 5.0}
"""bounded retries, short enough for a test"""


@pytest.fixture
def proxy(s3_endpoint: str) -> Iterator[tuple[str, Faults]]:
    with fault_proxy(s3_endpoint) as (endpoint, faults):
        yield endpoint, faults


def test_passing_faults_are_retried_and_nothing_is_lost_or_doubled(
    RE: RunEngine, tmp_path: Path, s3_endpoint: str, bucket: str, proxy: tuple[str, Faults]
) -> None:
    documents = grid_run(RE)
    uid = documents[0][1]["uid"]
    feed(ZarrWriter(f"s3://{bucket}/clean", storage_options={"endpoint_url": s3_endpoint}), documents)
    endpoint, faults = proxy
    # every third request faulted, nine times: six answered 503, then three dropped
    faults.fail, faults.drop, faults.every = 6, 3, 3
    options = {"endpoint_url": endpoint, **FAST_RETRIES}
    feed(ZarrWriter(f"s3://{bucket}/faulty", storage_options=options), documents)
    assert sum(faults.faulted.values()) == 9 and faults.fail == faults.drop == 0
    objects = every_object(s3_endpoint, bucket)
    clean = {k.removeprefix("clean/"): v for k, v in objects.items() if k.startswith("clean/")}
    faulty = {k.removeprefix("faulty/"): v for k, v in objects.items() if k.startswith("faulty/")}
    assert sorted(faulty) == sorted(clean)  # no object missing, none extra
    store = f"{uid}.zarr"
    xr.testing.assert_identical(
        xr.open_datatree(fsspec_store(s3_endpoint, f"s3://{bucket}/faulty/{store}"), engine="zarr"),
        xr.open_datatree(fsspec_store(s3_endpoint, f"s3://{bucket}/clean/{store}"), engine="zarr"),
    )


def test_an_outage_fails_the_run_naming_bucket_and_key_and_what_was_uploaded_stays_readable(
    RE: RunEngine,
    tmp_path: Path,
    s3_endpoint: str,
    bucket: str,
    proxy: tuple[str, Faults],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """... and what was not uploaded is kept in the spool, which finalize_spool uploads later."""
    endpoint, faults = proxy
    options = {"endpoint_url": endpoint, "spool": str(tmp_path / "spool"), **FAST_RETRIES}
    writer = ZarrWriter(
        f"s3://{bucket}/runs", chunks={"cam": {"motor1": 1, "motor2": 1}}, storage_options=options
    )
    events = 0

    def outage_after_five_events(name: str, doc: Any) -> None:
        nonlocal events
        if name == "event":
            events += 1
            if events == 5:
                writer.flush()  # five events are in the bucket ...
                faults.outage = True  # ... and then the bucket is gone

    caplog.set_level(logging.DEBUG)
    RE.subscribe(writer)
    RE.subscribe(outage_after_five_events)
    with pytest.raises(BlueskyZarrError) as caught:
        RE(bp.grid_scan([FrameCounter(), det], motor1, -1, 1, 3, motor2, 0, 2, 4))
    errors = [e for e in _chain(caught.value) if isinstance(e, WriteError)]
    assert errors, caught.value
    message = str(errors[-1])
    assert f"s3://{bucket}/runs/" in message and f"bucket {bucket!r}" in message, message
    assert "503" in message or "Service" in message, message
    with pytest.raises(BlueskyZarrError, match="raised in the scan"):  # at the stop, which said success
        writer.close()
    faulted = sum(faults.faulted.values())
    # one PUT tried 1 + max_retries times, and then the bucket is not tried again: spooled
    assert faulted == 1 + FAST_RETRIES["max_retries"], dict(faults.faulted)
    faults.outage = False
    everything = [str(e) for e in _chain(caught.value)] + [caplog.text, repr(writer)]
    assert not [text for text in everything if SECRET in text]
    # what was uploaded before the outage is readable, and the mask vouches only for it
    (store,) = {k.split("/")[1] for k in every_object(s3_endpoint, bucket)}
    primary = xr.open_zarr(
        fsspec_store(s3_endpoint, f"s3://{bucket}/runs/{store}"), group="primary", consolidated=False
    )
    written = primary.written.values
    assert written.sum() >= 5
    frames = primary.cam.values[..., 0, 0]
    assert (frames[written] > 0).all() and (frames[~written] == 0).all()
    root = json.loads(every_object(s3_endpoint, bucket)[f"runs/{store}/zarr.json"])
    assert root["attributes"]["status"] == "running"  # the bucket could not be told more
    # the spool holds the rest, and the error said where and what to call
    spool = tmp_path / "spool" / bucket / "runs" / store
    assert f"bluesky_zarr.finalize_spool({str(spool)!r})" in "\n".join(
        "\n".join([str(e), *getattr(e, "__notes__", [])]) for e in _chain(caught.value)
    )
    uploaded = finalize_spool(spool)
    assert uploaded[-1] == f"s3://{bucket}/runs/{store}/zarr.json" and not spool.exists()
    tree = xr.open_datatree(fsspec_store(s3_endpoint, f"s3://{bucket}/runs/{store}"), engine="zarr")
    assert tree.attrs["status"] == "fail" and f"bucket {bucket!r}" in str(tree.attrs["errors"])
    primary = tree["primary"].to_dataset()
    written_now = primary.written.values
    assert written_now.sum() >= written.sum()
    frames = primary.cam.values[..., 0, 0]
    assert (frames[written_now] > 0).all()  # the mask vouches only for frames in place
    # the frame whose upload failed is in place too, but the mask, written when it had failed,
    # does not vouch for it: a frame unvouched for, never a fill value vouched for
    assert (frames[~written_now] > 0).sum() <= 1


def _chain(err: BaseException | None) -> list[BaseException]:
    out = []
    while err is not None:
        out.append(err)
        err = err.__context__ or err.__cause__
    return out


def test_credentials_are_stored_nowhere(
    RE: RunEngine, tmp_path: Path, s3_endpoint: str, bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Not in the objects of the bucket (Zarr attributes, table metadata), a log line at any level,
    an error, a repr, or a pickled writer; given as storage_options or taken from the environment."""
    caplog.set_level(logging.DEBUG)
    documents = grid_run(RE)
    options = {"endpoint_url": s3_endpoint, "key": "bluesky-zarr-test-key-id", "secret": SECRET}
    writer = Writer(f"s3://{bucket}/runs", Zarr(), "parquet", "arrow", storage_options=options)
    texts = [repr(writer), str(vars(writer)), repr(writer.target), str(vars(writer.target))]
    pickled = pickle.dumps(writer)
    feed(writer, documents)
    again = pickle.loads(pickled)  # a writer of the same configuration, credentials from the environment
    assert isinstance(again, Writer) and again.target.location == writer.target.location
    feed(again, [(n, d) for n, d in grid_run(RE)])
    with pytest.raises(WriteError) as caught:  # an error with credentials in play
        ParquetWriter("s3://no-such-bucket/x", storage_options={**options, "max_retries": 0})(
            "start", documents[0][1]
        )
    texts += [str(caught.value), repr(caught.value), caplog.text]
    assert "no-such-bucket" in str(caught.value)
    assert not [t for t in texts if SECRET in t]
    assert SECRET.encode() not in pickled
    objects = every_object(s3_endpoint, bucket)
    assert len(objects) > 20
    assert not [key for key, data in objects.items() if SECRET.encode() in data]
