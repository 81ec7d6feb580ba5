"""Follow a running scan from another process: read an Arrow IPC stream file while it grows.

    python examples/follow_arrow_stream.py data/<run>/primary.arrows

Prints the rows of every record batch as soon as the writer has flushed it (every second by
default, and every ``batch_rows`` rows), and stops when the run's last batch comes: the one
whose custom metadata holds the stop document. Needs only pyarrow, not bluesky or this package.

How it works: the file is opened before or while it is written, and wrapped in a file object
whose ``read(n)`` waits until ``n`` bytes are there. pyarrow's stream reader then reads one
whole message at a time, so it never sees half a batch. A writer that dies without ending the
stream is noticed when the file stops growing for ``--idle`` seconds.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa


class GrowingFile(io.RawIOBase):
    """A file that is still being written: ``read(n)`` waits for ``n`` bytes (or ``idle`` seconds)."""

    def __init__(self, path: Path, poll: float = 0.05, idle: float = 30.0) -> None:
        self.poll, self.idle = poll, idle
        deadline = time.monotonic() + idle
        while not path.exists():  # the scan may not have started yet
            if time.monotonic() > deadline:
                raise FileNotFoundError(f"{path} did not appear within {idle} s")
            time.sleep(poll)
        self.file = path.open("rb")

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            return self.file.read()
        chunks, wanted, waited = [], size, 0.0
        while wanted:
            data = self.file.read(wanted)
            if data:
                chunks.append(data)
                wanted -= len(data)
                waited = 0.0
            elif waited >= self.idle:
                break  # the writer stopped writing: the reader sees the end of the file
            else:
                time.sleep(self.poll)
                waited += self.poll
        return b"".join(chunks)

    def close(self) -> None:
        self.file.close()
        super().close()


def open_growing_stream(
    path: str | Path, *, poll: float = 0.05, idle: float = 30.0
) -> pa.ipc.RecordBatchStreamReader:
    """A stream reader on a ``.arrows`` file that may still be written; waits for its schema."""
    return pa.ipc.open_stream(GrowingFile(Path(path), poll, idle))


def decoded(metadata: dict[bytes, bytes] | None) -> dict[str, Any]:
    """Schema or batch metadata with its JSON values parsed."""
    return {key.decode(): json.loads(value) for key, value in (metadata or {}).items()}


def follow(reader: pa.ipc.RecordBatchStreamReader) -> Iterator[tuple[pa.RecordBatch, dict[str, Any]]]:
    """Every record batch with its custom metadata, as it comes.

    Ends after the batch that carries ``stop`` (the run ended), at the end-of-stream marker, or
    when the file did not grow for ``idle`` seconds (the writer died: every batch before was
    whole, and that is all there is).
    """
    while True:
        try:
            batch, custom = reader.read_next_batch_with_custom_metadata()
        except StopIteration:
            return
        except (pa.ArrowInvalid, OSError):  # cut short: the writer died in the middle of a message
            return
        metadata = decoded(custom)
        yield batch, metadata
        if "stop" in metadata:
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("path", type=Path, help="the .arrows file of one stream of a run")
    parser.add_argument(
        "--idle", type=float, default=30.0, help="give up after this many seconds without data"
    )
    args = parser.parse_args(argv)
    reader = open_growing_stream(args.path, idle=args.idle)
    schema_metadata = decoded(reader.schema.metadata)
    start = schema_metadata.get("start", {})
    print(
        f"run {start.get('uid')} ({start.get('plan_name')}), stream {schema_metadata.get('stream')}",
        flush=True,
    )
    for batch, metadata in follow(reader):
        for row in batch.to_pylist():
            shown = {
                k: v for k, v in row.items() if not isinstance(v, list)
            }  # frames stay out of the terminal
            print(json.dumps(shown), flush=True)
        if "stop" in metadata:
            print(
                f"stop: exit_status={metadata['stop'].get('exit_status')}, status={metadata['status']}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
