"""Exit codes of the ``growth`` command line, and which error ends a command with which.

The README documents the contract: 0 success, 1 the run failed, 2 bad input (a
config field, a data file's column and row), 3 refused (another run for the same
date and campaign is in progress).

>>> exit_code(None), exit_code(BadInput("budget must be positive")), exit_code(OSError())
(<ExitCode.OK: 0>, <ExitCode.BAD_INPUT: 2>, <ExitCode.FAILED: 1>)
"""

from __future__ import annotations

from enum import IntEnum

from pydantic import ValidationError

from growth.data.table_check import DataValidationError
from growth.store.engine import BadStoreURL
from growth.store.locks import RunInProgress


class ExitCode(IntEnum):
    """How a command ended."""

    OK = 0
    FAILED = 1  # the run failed (it is recorded as failed, with no partial rows)
    BAD_INPUT = 2  # a config field, a dataset file's column and row, a missing file, a bad URL
    BUSY = 3  # refused: another run for the same date and campaign is in progress


class BadInput(ValueError):
    """A command's input (config file, dates, options) is invalid: exit code 2."""


def exit_code(exc: BaseException | None) -> ExitCode:
    """The exit code for how a command ended (``None``: it succeeded)."""
    if exc is None:
        return ExitCode.OK
    if isinstance(exc, RunInProgress):
        return ExitCode.BUSY
    bad = BadInput | BadStoreURL | DataValidationError | FileNotFoundError | ValidationError
    if isinstance(exc, bad):
        return ExitCode.BAD_INPUT
    return ExitCode.FAILED
