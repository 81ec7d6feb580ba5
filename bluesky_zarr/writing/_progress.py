"""The progress display of a writer: points taken of ``num_points``, the rate, the time left, and
how far the writer lags behind the RunEngine.

The scan pays for it with one integer addition per event in the caller's thread; the writer
thread adds what it has written. A display thread of its own draws both with tqdm (a terminal
bar; a widget in Jupyter through ``tqdm.auto``) twice a second, so neither the RunEngine nor the
writer ever waits on the terminal.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import IO, Any

from tqdm.auto import tqdm

__all__ = ["ProgressDisplay"]

PRIMARY = "primary"
"""The stream whose events are the scan's points (``num_points`` in the start document)."""


class ProgressDisplay:
    """One bar per run, for the events of its primary stream.

    Parameters
    ----------
    file
        Where the bars are drawn (default: stderr, or a notebook widget).
    interval
        Seconds between redraws.
    """

    def __init__(self, file: IO[str] | None = None, interval: float = 0.5) -> None:
        self.file = file
        self.interval = interval
        self.points: set[str] = set()
        """the primary streams' descriptor uids"""
        self.taken = 0
        """events of the run's primary stream that the RunEngine emitted (the caller's thread adds)"""
        self.written = 0
        """... and those the writer has handed to its formats (the writer thread adds)"""
        self._run: Mapping[str, Any] | None = None
        self._ended = False
        self._closing = False
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the caller's thread ------------------------------------------------------------------------

    def document(self, name: str, doc: Any) -> None:
        """Count a document the RunEngine emitted; at ``stop``, after the writer has written the run."""
        if name == "event":
            if doc.get("descriptor") in self.points:
                self.taken += 1
        elif name == "event_page":
            if doc.get("descriptor") in self.points:
                self.taken += len(doc.get("seq_num") or ())
        elif name == "descriptor":
            if doc.get("name") == PRIMARY:
                self.points.add(doc["uid"])
        elif name == "start":
            with self._lock:
                self._run, self._ended, self.taken, self.written = doc, False, 0, 0
            if self._thread is None:
                self._thread = threading.Thread(target=self._draw, name="bluesky-zarr progress", daemon=True)
                self._thread.start()
            self._wake.set()
        elif name == "stop":
            with self._lock:
                self._ended = True
            self._wake.set()

    # --- the writer thread --------------------------------------------------------------------------

    def wrote(self, name: str, docs: list[Any]) -> None:
        """Events (or event pages) of one descriptor that the writer has handed to its formats."""
        if docs and docs[0].get("descriptor") in self.points:
            self.written += len(docs) if name == "event" else sum(len(d.get("seq_num") or ()) for d in docs)

    def close(self) -> None:
        """Draw the last state and end the display thread."""
        with self._lock:
            self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    # --- the display thread -------------------------------------------------------------------------

    def _draw(self) -> None:
        bar: Any = None
        shown: Mapping[str, Any] | None = None
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            with self._lock:
                run, ended, closing = self._run, self._ended, self._closing
                taken, written = self.taken, self.written
            if bar is not None and run is not shown:  # the next run began before this one's bar ended
                bar.close()
                bar = None
            if run is not None and run is not shown:
                shown, bar = run, self._bar(run)
            if bar is not None:
                bar.n = taken  # the average rate over the run: tqdm's own when no update() smooths it
                bar.set_postfix_str(f"written {written}, writer {taken - written} behind", refresh=False)
                bar.refresh()
                if ended or closing:
                    bar.close()
                    bar = None
            if closing:
                return

    def _bar(self, run: Mapping[str, Any]) -> Any:
        total = run.get("num_points")
        label = run.get("scan_id", str(run.get("uid", ""))[:8])
        return tqdm(
            total=total if isinstance(total, int) and total > 0 else None,
            desc=f"scan {label} ({run.get('plan_name', '?')})",
            unit="pt",
            file=self.file,
            dynamic_ncols=True,
            leave=True,
        )
