"""Errors that carry a user-facing, one-line explanation."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """Exit status of ``mpisearch`` (every rank exits with the same one)."""

    OK = 0
    FAILED = 1  # the search ran but failed (every fit failed, or the refit)
    INPUT = 2  # bad input (config, data, estimator, arguments)
    INTERRUPTED = 99  # stopped by SIGTERM/SIGUSR1: partial results written, resumable


class InputError(ValueError):
    """Bad user input (config, data, estimator, arguments).

    The CLI prints ``mpisearch: error: <message>`` and exits with status 2.
    The message names what is wrong and where (key, file, dataset).
    """


class SearchFailedError(RuntimeError):
    """The search ran but produced nothing usable (e.g. every fit failed)."""


class OutputError(SearchFailedError):
    """An output file could not be written during a run (a full disk, a directory made read-only).

    The CLI prints one line and exits with status 1; files already written stay whole."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` when a close match exists, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
