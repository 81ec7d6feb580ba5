"""How many scalar events per second the writers take, next to suitcase-csv measured in the same run.

A run of 100 000 scalar events (5 float data keys, ``det0``..``det4``, as a point detector and
motors read them), built with ``event_model.compose_run``, is replayed through each writer: once
as 100 000 individual ``event`` documents (what a RunEngine emits), once as 1 000 ``event_page``
documents of 100 events. The clock runs from the first document to the return of ``close()``,
after the ``stop`` document has waited until every row is on disk (the Parquet writer has merged
its parts by then). Outputs are read back (outside the clock) so a writer that drops rows cannot
look fast.

- ``ParquetWriter`` (zstd), ``ArrowWriter`` (Arrow IPC stream), ``ZarrWriter``, ``CSVWriter``,
  ``HDF5Writer``;
- ``Zarr + Parquet``: one ``Writer`` writing both formats from one pass;
- ``suitcase-csv``: ``suitcase.csv.Serializer``, the existing bluesky serializer for tables, the
  baseline. It builds a pandas DataFrame per document: with individual events it writes about a
  thousand per second, so it replays only the first ``--csv-events`` events (10 000 by default)
  of the same run; its events/s is the rate over those, which does not depend on their number.

``ratio`` is a method's events/s divided by suitcase-csv's. Every figure is the median of
several repeats; the order of the methods rotates between repeats, and between measurements the
output is deleted and ``os.sync()`` runs (both untimed).

Run ``python benchmarks/bench_table_writers.py`` (about a minute) or ``--quick`` for a smoke run
of a few seconds. ``--dir`` chooses where the temporary directory goes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import event_model
import h5py
import pyarrow as pa
import pyarrow.parquet as pq
import zarr
from suitcase.csv import Serializer

from bluesky_zarr import ArrowWriter, CSVWriter, HDF5Writer, Parquet, ParquetWriter, Writer, Zarr, ZarrWriter

Documents = list[tuple[str, Any]]
KEYS = [f"det{i}" for i in range(5)]
PAGE = 100


@dataclass(frozen=True)
class Settings:
    events: int
    csv_events: int
    repeats: int


FULL = Settings(events=100_000, csv_events=10_000, repeats=5)
QUICK = Settings(events=5_000, csv_events=500, repeats=1)


def compose(n: int, pages: bool) -> Documents:
    """One run of ``n`` scalar events, as events or as event pages of ``PAGE``; made before timing."""
    bundle = event_model.compose_run(metadata={"plan_name": "bench_scalars"})
    data_keys = {k: {"source": f"bench:{k}", "dtype": "number", "shape": []} for k in KEYS}
    descriptor = bundle.compose_descriptor(name="primary", data_keys=data_keys)
    docs: Documents = [("start", bundle.start_doc), ("descriptor", descriptor.descriptor_doc)]
    t0 = time.time()
    events = [
        descriptor.compose_event(
            data={k: float(i * (j + 1)) for j, k in enumerate(KEYS)},
            timestamps=dict.fromkeys(KEYS, t0 + i * 1e-3),
            seq_num=i + 1,
            time=t0 + i * 1e-3,
            validate=False,
        )
        for i in range(n)
    ]
    if pages:
        docs += [
            ("event_page", event_model.pack_event_page(*events[i : i + PAGE])) for i in range(0, n, PAGE)
        ]
    else:
        docs += [("event", e) for e in events]
    docs.append(("stop", bundle.compose_stop()))
    return docs


def prefix(docs: Documents, n: int) -> Documents:
    """The first ``n`` events (or the pages holding them) of a run, then its stop document."""
    kept: Documents = []
    count = 0
    for name, doc in docs:
        if name in {"event", "event_page"}:
            if count >= n:
                continue
            count += 1 if name == "event" else len(doc["seq_num"])
        kept.append((name, doc))
    return kept


def count_events(docs: Documents) -> int:
    return sum(1 if n == "event" else len(d["seq_num"]) for n, d in docs if n in {"event", "event_page"})


def replay(writer: Callable[[str, Any], Any], docs: Documents, close: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    for name, doc in docs:
        writer(name, doc)
    close()
    return time.perf_counter() - t0


def _writer(make: Callable[[Path], Writer]) -> Callable[[Path, Documents], float]:
    def run(out: Path, docs: Documents) -> float:
        writer = make(out)
        return replay(writer, docs, writer.close)

    return run


def _csv(out: Path, docs: Documents) -> float:
    serializer = Serializer(str(out), file_prefix="run-")
    return replay(serializer, docs, lambda: None)  # its stop closes the files (a second close fails)


METHODS: dict[str, Callable[[Path, Documents], float]] = {
    "ParquetWriter": _writer(lambda out: ParquetWriter(out, file_prefix="run")),
    "ArrowWriter": _writer(lambda out: ArrowWriter(out, file_prefix="run")),
    "ZarrWriter": _writer(lambda out: ZarrWriter(out, file_prefix="run")),
    "CSVWriter": _writer(lambda out: CSVWriter(out, file_prefix="run")),
    "HDF5Writer": _writer(lambda out: HDF5Writer(out, file_prefix="run")),
    "Zarr + Parquet": _writer(lambda out: Writer(out, Zarr(), Parquet(), file_prefix="run")),
    "suitcase-csv": _csv,
}
BASELINE = "suitcase-csv"


def rows_written(method: str, out: Path) -> int:
    """Read the output back with stock readers: how many rows it holds."""
    if method == "suitcase-csv":
        (csv,) = out.glob("*.csv")
        return sum(1 for _ in csv.open()) - 1
    if method == "ArrowWriter":
        with pa.ipc.open_stream(out / "run" / "primary.arrows") as reader:
            return reader.read_all().num_rows
    if method == "ZarrWriter":
        return int(zarr.open_array(str(out / "run.zarr"), path="primary/seq_num", mode="r").shape[0])
    if method == "CSVWriter":
        return sum(1 for _ in (out / "run" / "primary.csv").open()) - 1
    if method == "HDF5Writer":
        with h5py.File(out / "run.h5", "r") as f:
            return len(f["entry/primary/seq_num"])
    return int(pq.read_metadata(out / "run" / "primary.parquet").num_rows)


def settle(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    os.sync()


def measure(docs: Documents, csv_docs: Documents, repeats: int, work: Path) -> dict[str, list[float]]:
    """Events per second of each method, one figure per repeat."""
    rates: dict[str, list[float]] = {m: [] for m in METHODS}
    names = list(METHODS)
    for repeat in range(repeats):
        shift = repeat % len(names)
        for method in names[shift:] + names[:shift]:
            these = csv_docs if method == BASELINE else docs
            out = work / "out"
            out.mkdir()
            seconds = METHODS[method](out, these)
            expected = count_events(these)
            if repeat == 0 and rows_written(method, out) != expected:
                raise SystemExit(f"{method} did not write the {expected} rows it was given")
            rates[method].append(expected / seconds)
            settle(out)
    return rates


def report(label: str, rates: dict[str, list[float]], n: int, n_csv: int) -> list[str]:
    base = statistics.median(rates[BASELINE])
    lines = [
        label,
        f"  {'':18}{'events':>8}  {'events/s':>10}  {'min-max events/s':>19}  {'us each':>8}  {'ratio':>8}",
    ]
    for method, values in rates.items():
        median = statistics.median(values)
        span = f"{min(values):,.0f}-{max(values):,.0f}"
        count = n_csv if method == BASELINE else n
        each = 1e6 / median
        lines.append(
            f"  {method:<18}{count:>8}  {median:>10,.0f}  {span:>19}  {each:>8.2f}  {median / base:>7.1f}x"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few events, one repeat")
    parser.add_argument("--dir", type=Path, default=None, help="where to make the temporary directory")
    parser.add_argument("--csv-events", type=int, default=None, help="events replayed through suitcase-csv")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    csv_events = args.csv_events or settings.csv_events
    parent = args.dir if args.dir is not None else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-table-writers-", dir=parent))
    print(
        f"scalar events through the writers, in {work}  (medians of {settings.repeats}; "
        f"python {sys.version.split()[0]}, pyarrow {pa.__version__})",
        flush=True,
    )
    try:
        for pages in (False, True):
            docs = compose(settings.events, pages)
            csv_docs = prefix(docs, csv_events)
            rates = measure(docs, csv_docs, settings.repeats, work)
            kind = f"event_page documents of {PAGE}" if pages else "event documents"
            label = f"{settings.events} scalar events ({len(KEYS)} keys) as {kind}"
            print("\n".join(report(label, rates, settings.events, count_events(csv_docs))), flush=True)
        print(f"ratio: events/s over {BASELINE}'s events/s, measured in the same run")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
