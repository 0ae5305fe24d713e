"""The output directory of a run: one run at a time, earlier work never lost or mixed in.

- A lock (``flock`` on LOCK, held for the whole run) refuses a second run on the directory.
- A directory that holds an earlier run (a journal with a line, or result files) is used
  only with ``resume`` (the same search: the fingerprints must match, unless ``force``) or
  with ``force``, which moves the earlier run's files to a dated ``earlier-*`` folder.
- A new or resumed run clears every file that it writes again, so no stale
  cv_results.csv, best.json, best_model.pkl or errors.txt survives beside it.
- run.json says from the start that the run is running, and :meth:`OutDir.finish` how it ended.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from .atomic import sync_dir
from .errors import InputError
from .files import EARLIER, JOURNAL, LOCK, REPORT_DIR, RESULT_FILES, RUN_FILES, RUN_INFO
from .journal import Prior, read_prior
from .output import write_json
from .types import RunStatus


class OutDir:
    """A run's output directory, locked by this process from :meth:`open` to :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock: int | None = None

    # -- opening -------------------------------------------------------------------------
    def open(self, digest: str, resume: bool, force: bool = False) -> Prior:
        """Lock the directory and make it ready for a run; the finished tasks to skip (resume only)."""
        self._make()
        self._acquire()
        try:
            prior = self._resume(digest, force) if resume else self._start(force)
            info: dict[str, Any] = {"status": RunStatus.RUNNING, "config_hash": digest}
            self.write_info({**info, "resumed": True} if resume else info)
        except OSError as exc:
            self.close()
            raise InputError(f"--out: cannot write to {self.path}: {exc.strerror}") from None
        except BaseException:
            self.close()
            raise
        return prior

    def _make(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"--out: cannot use {self.path} as the output directory: {exc.strerror}") from None

    def _acquire(self) -> None:
        try:
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InputError(f"--out: cannot write to {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise InputError(f"--out: {self.path} is in use by another run ({holder}); wait for it to end "
                                 "or choose another output directory") from None
            raise InputError(f"--out: cannot lock {self.path / LOCK}: {exc.strerror}") from None
        self._lock = fd
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)

    def _resume(self, digest: str, force: bool) -> Prior:
        if not (self.path / JOURNAL).exists():
            raise InputError(f"--resume: {self.path} holds no {JOURNAL} to resume from")
        previous = self.info().get("config_hash")
        if previous is not None and previous != digest and not force:
            raise InputError(
                f"--resume: the config or data differ from the run in {self.path} (config hash "
                f"{previous[:12]} != {digest[:12]}); resume with the same search, or add --force"
            )
        prior = read_prior(self.path)  # a bad line stops the resume before anything is removed
        self._clear(keep=(JOURNAL, RUN_INFO))
        return prior

    def _start(self, force: bool) -> Prior:
        if self.holds_work():
            if not force:
                status = self.info().get("status", "unknown")
                raise InputError(f"--out: {self.path} holds an earlier run (status {status}); add --resume to "
                                 f"continue it, or --force to start afresh (the earlier run is moved to "
                                 f"{self.path / EARLIER}<time>/)")
            self._move_aside()
        self._clear()
        return Prior()

    # -- state ---------------------------------------------------------------------------
    def holds_work(self) -> bool:
        """True when an earlier run left something to lose: a journal line or a result file."""
        journal = self.path / JOURNAL
        if journal.is_file() and journal.stat().st_size > 0:
            return True
        return any((self.path / name).exists() for name in RESULT_FILES)

    def info(self) -> dict[str, Any]:
        """run.json's content ({} when missing or unreadable)."""
        try:
            info = json.loads((self.path / RUN_INFO).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def write_info(self, info: dict[str, Any]) -> None:
        write_json(self.path / RUN_INFO, info)

    def finish(self, status: RunStatus, error: str | None = None) -> None:
        """Say in run.json how the run ended when no outputs could be written (best effort: a full
        disk may refuse even that; run.json then still says "running")."""
        info = {**self.info(), "status": status}
        if error is not None:
            info["error"] = error
        try:
            self.write_info(info)
        except OSError:
            pass

    # -- moving and clearing ----------------------------------------------------------------
    def _move_aside(self) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        target = self.path / f"{EARLIER}{stamp}"
        n = 1
        while target.exists():
            n += 1
            target = self.path / f"{EARLIER}{stamp}-{n}"
        target.mkdir()
        for name in RUN_FILES:
            if (self.path / name).exists():
                os.replace(self.path / name, target / name)
        sync_dir(self.path)

    def _clear(self, keep: tuple[str, ...] = ()) -> None:
        """Remove the run files (but ``keep``) that an earlier, workless or resumed run left."""
        for name in RUN_FILES:
            path = self.path / name
            if name in keep or not (path.exists() or path.is_symlink()):
                continue
            if name == REPORT_DIR and path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()

    def close(self) -> None:
        """Release the lock (the lock file stays: removing it would race with a run waiting for it)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
