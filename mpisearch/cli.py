"""Command line: ``mpisearch run | data make | data import | report``."""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from typing import Any, NoReturn

from .errors import ExitCode, InputError, SearchFailedError


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see '{self.prog} --help')", ExitCode.INPUT)


# A crashing rank waits this long between printing its traceback and MPI_Abort: the
# launcher may kill the job before it has forwarded the rank's last output (seen once in
# CI: a worker's traceback lost, stderr empty); a fraction of a second is enough.
ABORT_DELAY_SECONDS = 0.5

def fail(message: str, status: int) -> NoReturn:
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    print(f"mpisearch: error: {first}", file=sys.stderr)
    sys.exit(status)


def count(text: str) -> int:
    """A whole number, also written as 1e5."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'")
    return int(value)


def build_parser() -> Parser:
    parser = Parser(prog="mpisearch", description="Distributed hyperparameter search for scikit-learn on MPI.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    run = sub.add_parser("run", help="run the search a config file describes")
    run.add_argument("config", help="TOML config file")
    run.add_argument("--out", help="output directory (overrides output.dir)")
    run.add_argument("--resume", action="store_true", help="skip tasks already in the journal")
    run.add_argument("--force", action="store_true",
                     help="move an earlier run in the output directory to earlier-<time>/ and start afresh; "
                          "with --resume: resume even if the config or data changed")
    noise = run.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    noise.add_argument("-v", "--verbose", action="store_true", help="also report every finished point")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override one config value, e.g. --set search.n_iter=20 (repeatable)")
    data = sub.add_parser("data", help="make or import HDF5 datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, parser_class=Parser)
    make = data_sub.add_parser("make", help="write a bundled or synthetic dataset to HDF5")
    make.add_argument("name", help="digits, breast_cancer, wine, iris, classification, regression")
    make.add_argument("--out", required=True, help="output .h5 file")
    make.add_argument("--rows", type=count, help="rows of a synthetic dataset (e.g. 100000 or 1e5)")
    make.add_argument("--features", type=int, help="features of a synthetic dataset")
    make.add_argument("--seed", type=int, default=0, help="seed of a synthetic dataset")
    imp = data_sub.add_parser("import", help="convert a CSV file (header line, numeric features) to HDF5, or with "
                              "--table a CSV or Parquet file of named columns of any types")
    imp.add_argument("csv", help="input CSV file (or Parquet: .parquet, .pq, with --table)")
    imp.add_argument("--table", action="store_true",
                     help="keep the columns' names and types (numbers, categories, strings): X becomes a table "
                          "that the fits get as a pandas DataFrame")
    imp.add_argument("--target", required=True, help="name of the target column")
    imp.add_argument("--out", required=True, help="output .h5 file")
    report = sub.add_parser("report", help="summarise a finished run")
    report.add_argument("dir", help="a run's output directory")
    report.add_argument("--plot", action="store_true", help="also write PNG plots and an HTML page to DIR/report/")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        from .runtime import resolve_comm

        return _guarded(cmd_run, args, resolve_comm())
    return _guarded(COMMANDS[(args.command, getattr(args, "data_command", None))], args, None)


def _guarded(command: Any, args: argparse.Namespace, comm: Any) -> int:
    """Run a command; one-line errors for bad input, abort every rank on a crash."""
    rank = comm.Get_rank() if comm is not None else 0
    try:
        return command(args, comm)
    except InputError as exc:
        _quiet_fail(rank, str(exc), ExitCode.INPUT)
    except SearchFailedError as exc:
        _quiet_fail(rank, str(exc), ExitCode.FAILED)
    except Exception:
        traceback.print_exc()
        if comm is not None:
            sys.stderr.flush()
            time.sleep(ABORT_DELAY_SECONDS)
            comm.Abort(ExitCode.FAILED)
        return ExitCode.FAILED


def _quiet_fail(rank: int, message: str, status: int) -> NoReturn:
    """Rank 0 prints the one-line error; every rank exits with the same status."""
    if rank == 0:
        fail(message, status)
    sys.exit(status)


def cmd_run(args: argparse.Namespace, comm: Any) -> int:
    from .runner import run_config
    from .types import StopReason

    outcome = run_config(args.config, overrides=args.overrides, out=args.out, resume=args.resume,
                         force=args.force, comm=comm, verbosity=0 if args.quiet else (2 if args.verbose else 1))
    if outcome.info.get("abandoned") and comm is not None:
        comm.Abort(ExitCode.INTERRUPTED)  # workers are still inside fits past the grace period
    return ExitCode.INTERRUPTED if outcome.stopped == StopReason.SIGNAL else ExitCode.OK


def cmd_data_make(args: argparse.Namespace, comm: Any = None) -> int:
    from .data.make import make_file

    path = make_file(args.name, args.out, args.rows, args.features, args.seed)
    print(f"wrote {path}")
    return 0


def cmd_data_import(args: argparse.Namespace, comm: Any = None) -> int:
    import numpy as np

    from .data import hdf5
    from .data.make import import_csv, import_frame

    if args.table:
        frame, y = import_frame(args.csv, args.target)
        path = hdf5.write(args.out, frame, y)
        kinds = ", ".join(f"{c} {frame[c].dtype}" for c in frame.columns)
        print(f"wrote {path}: X {frame.shape[0]} x {frame.shape[1]} table ({kinds}), y '{args.target}'")
        return 0
    X, y = import_csv(args.csv, args.target)
    path = hdf5.write(args.out, X, y)
    n_nan = int(np.isnan(X).sum())
    missing = f"; {n_nan} empty (or NaN) feature cells are NaN" if n_nan else ""
    print(f"wrote {path}: X {X.shape[0]} x {X.shape[1]}, y '{args.target}'{missing}")
    return 0


def cmd_report(args: argparse.Namespace, comm: Any = None) -> int:
    from . import report

    return report.main(args.dir, args.plot)


COMMANDS = {("data", "make"): cmd_data_make, ("data", "import"): cmd_data_import, ("report", None): cmd_report}


def entry() -> None:
    sys.exit(main())
