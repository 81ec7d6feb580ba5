"""The ``bluesky-zarr`` command line: ``export`` saved document files, ``inspect`` an output,
``finalize`` an interrupted one, ``plot`` a quick look, ``serve`` runs published over 0MQ.

Exit codes: 0 when everything asked for was done (runs already exported are skipped, outputs
finished already are left as they are: not errors); 1 when some run or path failed (each is
reported, the others go on); 2 for a usage error (argparse's own); 3 when ``finalize`` found a
writer still writing an output (try again once it has stopped). ``serve`` runs until SIGTERM or
SIGINT and then exits 0 once everything it received is written (1 if a write failed).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm import tqdm

from ._errors import BlueskyZarrError, ConfigurationError, OutputBusyError, StoreExistsError
from ._units import size_text
from .readers import inspect_run, quick_look
from .writing import (
    ServeConfig,
    Service,
    catalog_runs,
    document_files,
    export,
    finalize,
    is_catalog,
    open_catalog,
    read_config,
    read_document_file,
)

__all__ = ["main"]

FORMATS = ("zarr", "parquet", "arrow", "hdf5", "csv")


def _runs(args: argparse.Namespace) -> list[tuple[str, Callable[[], Iterable[tuple[str, Any]]]]]:
    """``(label, documents)`` of every run SOURCE holds: a catalog's runs, or one per document file."""
    if is_catalog(args.source):
        return list(catalog_runs(open_catalog(args.source), args.uid, args.search))
    if args.uid or args.search:
        raise ConfigurationError("--uid and --search choose runs of a catalog; SOURCE is document files")
    return [(path.name, functools.partial(read_document_file, path)) for path in document_files(args.source)]


def _export(args: argparse.Namespace) -> int:
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        choices = ", ".join(FORMATS)
        print(
            f"bluesky-zarr export: unknown format(s) {', '.join(unknown)}; choose from {choices}",
            file=sys.stderr,
        )
        return 2
    try:
        runs = _runs(args)
    except (FileNotFoundError, BlueskyZarrError) as err:
        print(f"bluesky-zarr export: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # a catalog that cannot be reached
        print(f"bluesky-zarr export: cannot read {args.source}: {err}", file=sys.stderr)
        return 1
    failed = 0
    # a bar over the runs on a terminal; one line per run in any case
    bar = tqdm(total=len(runs), unit="run", file=sys.stderr, disable=not sys.stderr.isatty(), leave=False)
    for number, (label, documents) in enumerate(runs, start=1):
        where = f"[{number}/{len(runs)}] {label}"
        try:
            artifacts = export(documents(), args.dest, args.file_prefix, format=formats, overwrite=False)
        except StoreExistsError as err:
            bar.write(f"{where}: skipped, already exported ({err})", file=sys.stderr)
            continue
        except Exception as err:  # one bad run is reported, the others go on
            failed += 1
            bar.write(f"{where}: FAILED: {err}", file=sys.stderr)
            continue
        finally:
            bar.update()
        written = ", ".join(str(p) for paths in artifacts.values() for p in paths)
        bar.write(f"{where}: wrote {written}", file=sys.stderr)
    bar.close()
    return 1 if failed else 0


def _key_value(text: str) -> tuple[str, Any]:
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"give KEY=VALUE, e.g. plan_name=grid_scan; not {text!r}")
    try:
        return key.strip(), json.loads(value)  # numbers and true/false as such
    except ValueError:
        return key.strip(), value


def _describe(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['path']}: {summary['format']}, run {summary.get('uid')} ({summary.get('plan_name')}), "
        f"status {summary.get('status')}, {size_text(summary.get('bytes') or 0)}"
    ]
    for what in ("errors", "quarantined"):
        for line in summary.get(what) or []:
            lines.append(f"  {what[:-1] if what == 'errors' else what}: {line}")
    for name, ranges in (summary.get("gaps") or {}).items():
        where = ", ".join(str(a) if a == b else f"{a} to {b}" for a, b in ranges)
        lines.append(f"  gaps: stream {name!r} never received the events with seq_num {where}")
    for name, stream in summary["streams"].items():
        said = []
        grid = stream.get("grid")
        if grid and grid.get("shape"):
            said.append(
                "grid " + " x ".join(f"{d} {n}" for d, n in zip(grid["dims"], grid["shape"], strict=False))
            )
        if stream.get("points_written") is not None:
            said.append(f"{stream['points_written']} of {stream['points']} points written")
        if "events" in stream:
            said.append(f"{stream['events']} events")
        if "rows" in stream:
            parts = (
                f" ({stream['unmerged_parts']} parts not merged yet)" if stream.get("unmerged_parts") else ""
            )
            said.append(f"{stream['rows']} rows in {stream['file']}{parts}, {size_text(stream['bytes'])}")
        lines.append(f"  stream {name}: {', '.join(said)}")
        for array, info in (stream.get("arrays") or stream.get("columns") or {}).items():
            if "dims" in info:  # a Zarr array
                codecs = " + ".join(info["codecs"]) or "no compression"
                shards = f", shards {info['shards']}" if info["shards"] else ""
                lines.append(
                    f"    {array:<24} {info['dtype']:<8} ({', '.join(info['dims'] or [])}) {info['shape']}, "
                    f"chunks {info['chunks']}{shards}, {codecs}, {size_text(info['bytes'])}"
                )
            else:
                shape = f" {info['shape']}" if info["shape"] else ""
                lines.append(f"    {array:<24} {info['dtype']}{shape}")
    return "\n".join(lines)


def _inspect(args: argparse.Namespace) -> int:
    failed = 0
    summaries = []
    for path in args.paths:
        try:
            summaries.append(inspect_run(path))
        except (OSError, BlueskyZarrError, ValueError) as err:
            failed += 1
            print(f"bluesky-zarr inspect: {err}", file=sys.stderr)
    if args.json:
        one = summaries[0] if summaries else None
        print(json.dumps(summaries if len(args.paths) > 1 else one, indent=2))
    else:
        print("\n\n".join(_describe(s) for s in summaries))
    return 1 if failed else 0


def _finalize(args: argparse.Namespace) -> int:
    failed = busy = 0
    for path in args.paths:
        try:
            done = finalize(path, force=args.force)
        except OutputBusyError as err:
            busy += 1
            print(f"{path}: not finalized: {err}", file=sys.stderr)
            continue
        except (OSError, BlueskyZarrError, ValueError) as err:
            failed += 1
            print(f"{path}: FAILED: {err}", file=sys.stderr)
            continue
        for output in done:
            did = "finalized" if output.changed else "finished already, left as it is"
            print(f"{output.path}: {did} (status {output.status})", file=sys.stderr)
            for note in output.notes:
                print(f"  {note}", file=sys.stderr)
    return 1 if failed else (3 if busy else 0)


def _point(text: str) -> tuple[str, float]:
    dim, _, value = text.partition("=")
    try:
        return dim.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give DIM=VALUE, e.g. wavelength=750; not {text!r}") from None


def _plot(args: argparse.Namespace) -> int:
    name = PurePosixPath(args.path.rstrip("/")).stem if "://" in args.path else Path(args.path).stem
    output = args.output if args.output is not None else Path(f"{name}.png")
    try:
        quick_look(args.path, args.key, dict(args.sel), stream=args.stream, output=output)
    except (OSError, BlueskyZarrError) as err:
        print(f"bluesky-zarr plot: {err}", file=sys.stderr)
        return 1
    print(f"wrote {output}", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=getattr(logging, args.log_level), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )  # fmt: skip
    try:
        config = (
            read_config(args.config.read_text(), str(args.config))
            if args.config is not None
            else ServeConfig()
        )
        formats: list[Any] = list(config.formats)
        if args.format is not None:
            names = [f.strip() for f in args.format.split(",") if f.strip()]
            configured = {f.label for f in formats}
            formats = [*formats, *(n for n in names if n.lower() not in configured)]
        options = dict(config.options)
        for key in ("file_prefix", "flush_interval", "on_error"):
            if getattr(args, key) is not None:
                options[key] = getattr(args, key)
        if args.overwrite:
            options["overwrite"] = True
        address = args.address or config.address
        directory = args.directory or config.directory
        if not address or not directory:
            raise ConfigurationError(
                "give the proxy's address and the directory, as arguments or as address and directory "
                "in the --config file"
            )
        prefix = args.prefix if args.prefix is not None else config.prefix
        service = Service(address, directory, *formats, prefix=prefix.encode(), **options)
    except (OSError, BlueskyZarrError) as err:
        print(f"bluesky-zarr serve: {err}", file=sys.stderr)
        return 2 if isinstance(err, ConfigurationError) else 1
    try:
        service.run()
    except BlueskyZarrError as err:
        logging.getLogger("bluesky_zarr.serve").error("%s", err)
        return 1
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="bluesky-zarr",
        description="Write bluesky runs to Zarr, Parquet, Arrow IPC, HDF5 and CSV, and look at them.",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    export_ = commands.add_parser(
        "export",
        help="write runs of a databroker catalog or saved document files as Zarr, Parquet, Arrow IPC, "
        "HDF5 or CSV",
        description="Write each run of SOURCE into DEST. SOURCE is a databroker 2.x catalog served by "
        "Tiled (its URL, http://host:port/..., with the API key in TILED_API_KEY; or databroker:NAME, "
        "a catalog databroker's Broker.named finds), or a .jsonl or .msgpack document file or a "
        "directory of them (one run per file). A run already exported is skipped, never overwritten; a "
        "run that fails is reported and the others go on (exit code 1).",
    )
    export_.add_argument("source", help="a catalog URL or databroker:NAME, a document file, or a directory")
    export_.add_argument(
        "dest", help="the directory (or s3://bucket/prefix/) the outputs go into (made if missing)"
    )
    export_.add_argument(
        "--format",
        default="zarr",
        help=f"one or more of {', '.join(FORMATS)}, comma separated (default zarr)",
    )
    export_.add_argument(
        "--file-prefix",
        default="{start[uid]}",
        help="names each output, from the start document (default {start[uid]})",
    )
    export_.add_argument(
        "--uid", action="append", default=[], help="a catalog's run to export (repeat for more; default all)"
    )
    export_.add_argument(
        "--search",
        type=_key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only a catalog's runs whose start document holds KEY=VALUE, e.g. plan_name=grid_scan",
    )
    export_.set_defaults(run=_export)

    inspect_ = commands.add_parser(
        "inspect",
        help="what a run's output holds: status, streams, grid and points written, arrays, sizes",
        description="Summarize one or more runs' outputs (a <run>.zarr store, or a <run>/ directory of "
        "Parquet or Arrow IPC files): status, errors, streams, the grid and how many of its points "
        "hold data, and each array's shape, dtype, chunks, shards, codecs and size on disk. Safe on a "
        "run that is still being written.",
    )
    inspect_.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="a run's store or directory")
    inspect_.add_argument("--json", action="store_true", help="print JSON instead of text")
    inspect_.set_defaults(run=_inspect)

    finalize_ = commands.add_parser(
        "finalize",
        help="finish a run whose writer was killed or crashed: readable, consistent, marked incomplete",
        description="Finish each run output (a <run>.zarr store, a <run>.h5 file, or a <run>/ directory "
        "of Parquet, Arrow IPC or CSV files) whose writer stopped before the run's end: Zarr metadata "
        "consolidated, every 1-D stream's arrays one length; Parquet parts merged; Arrow streams ended "
        "after their last whole batch; HDF5 open-for-writing mark cleared; a CSV row cut short dropped; "
        "status incomplete. Outputs finished already are left as they are. An output "
        "a writer is still writing is refused (exit code 3).",
    )
    finalize_.add_argument(
        "paths", nargs="+", metavar="PATH", help="a run's store, file or directory, or s3:// URL"
    )
    finalize_.add_argument(
        "--force",
        action="store_true",
        help="finish an output in object storage, where no lock tells whether a writer still writes it",
    )
    finalize_.set_defaults(run=_finalize)

    plot = commands.add_parser(
        "plot",
        help="a quick-look PNG: a frame at a grid point and the spectrum along the outer scan axis",
        description="Draw, from a run's Zarr store, the frame of KEY at the grid point --sel chooses "
        "(nearest values; a dimension not given is at its first point) and the spectrum: the frame's "
        "mean along the outer scan axis, at the other dimensions' selected values; axes carry units.",
    )
    plot.add_argument(
        "path", metavar="PATH", help="a run's <run>.zarr store (a path or s3:// URL) or <run>.h5 file"
    )
    plot.add_argument("--key", help="the data key of the frames (default: the stream's first frames)")
    plot.add_argument(
        "--sel", type=_point, action="append", default=[], metavar="DIM=VALUE", help="e.g. wavelength=750"
    )
    plot.add_argument("--stream", default="primary", help="the grid stream (default primary)")
    plot.add_argument("-o", "--output", type=Path, help="the PNG to write (default <run>.png here)")
    plot.set_defaults(run=_plot)

    serve = commands.add_parser(
        "serve",
        help="write the runs a RunEngine publishes over 0MQ (bluesky's Publisher and Proxy), until SIGTERM",
        description="Subscribe to a bluesky 0MQ proxy at ADDRESS (its output, where RemoteDispatchers "
        "connect) and write every run published there into DIRECTORY, in the formats asked for, as a "
        "Writer subscribed to the RunEngine would. Logs one line per run at its start (uid, plan, outputs) "
        "and at its stop (status, events, seconds), and warns of events lost on the way (gaps in "
        "seq_num, recorded in the run's metadata). On SIGTERM or SIGINT everything received is written, "
        "runs still open end 'incomplete', and it exits 0. Options given here win over the --config file's.",
    )
    serve.add_argument("address", nargs="?", help="the proxy's output, host:port (e.g. 127.0.0.1:5578)")
    serve.add_argument(
        "directory", nargs="?", help="the directory (or s3://bucket/prefix/) the outputs go into"
    )
    serve.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="a TOML file: address, directory, formats, the writer's options, and a table per format "
        "([zarr] data_keys, codecs, chunks, shards; [parquet] compression; ...)",
    )
    serve.add_argument(
        "--format", help=f"one or more of {', '.join(FORMATS)}, comma separated (default zarr)"
    )
    serve.add_argument(
        "--file-prefix", help="names each output, from the start document (default {start[uid]})"
    )
    serve.add_argument(
        "--flush-interval",
        type=float,
        metavar="SECONDS",
        help="how often what came is made visible (default 1)",
    )
    serve.add_argument(
        "--on-error",
        choices=("quarantine", "raise"),
        help="what a reading that cannot be stored costs: only itself (default), or its run",
    )
    serve.add_argument("--overwrite", action="store_true", help="replace outputs that exist already")
    serve.add_argument("--prefix", help="only documents a Publisher sent with this prefix (default: all)")
    serve.add_argument(
        "--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="default INFO"
    )
    serve.set_defaults(run=_serve)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
