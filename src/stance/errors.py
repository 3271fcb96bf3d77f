"""One error type for bad input, reported as a single line by every entry point.

:func:`reports_errors` is the one place that turns failures users cause into one line on stderr:
bad input (:class:`StanceError`) and bad configuration (a Hydra/OmegaConf composition error) exit
with status 2, an interruption (Ctrl-C, or SIGTERM where a run turns it into :class:`Interrupted`)
with 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

F = TypeVar("F", bound=Callable[..., Any])


class StanceError(Exception):
    """Bad input or configuration. The message is one line naming the file and the problem."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM; ``hint`` says what to do next (one line)."""

    def __init__(self, signum: int = signal.SIGINT, hint: str = ""):
        super().__init__(hint)
        self.signum = int(signum)
        self.hint = hint


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM (kill, a scheduler's time-out) raises :class:`Interrupted` like
    Ctrl-C raises KeyboardInterrupt, so a run can record where it stopped. Main thread only (signal
    handlers cannot be set elsewhere); the previous handler is restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def config_error_line(err: BaseException) -> str | None:
    """One line naming the setting for a Hydra/OmegaConf configuration error, None for others.

    Hydra wraps OmegaConf's error (which carries ``full_key``) in a ConfigCompositionException;
    a config group option that does not exist is a MissingConfigException listing the options.
    """
    if not isinstance(err, (HydraException, OmegaConfBaseException)):
        return None
    inner = err.__cause__ if isinstance(err.__cause__, OmegaConfBaseException) else err
    text = str(inner).strip()
    first = text.splitlines()[0].strip() if text else type(inner).__name__
    key = getattr(inner, "full_key", None)
    options = getattr(err, "options", None)
    missing = getattr(err, "missing_cfg_file", None)
    if missing and options is not None:
        group, _, name = str(missing).rpartition("/")
        return f"{group or 'config'}: no option {name!r} (available: {', '.join(options) or 'none'})"
    if key:
        if "not in" in first or "not found" in first:
            return f"{key}: no such setting ({first}; a new key needs a leading '+')"
        return f"{key}: {first}"
    if not isinstance(inner, OmegaConfBaseException) and err.__cause__ is not None:
        cause = str(err.__cause__).strip().splitlines()
        first = f"{first} ({cause[0].strip()})" if cause else first
    return first


@contextlib.contextmanager
def _hydra_raises() -> Iterator[None]:
    """Let Hydra raise configuration errors (instead of printing them and exiting with status 1)
    so the wrapper outside ``@hydra.main`` can report them in one line."""
    before = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = before


def where(path: object, line: int | None = None) -> str:
    """Format a location as ``path`` or ``path:line`` for error messages."""
    return f"{path}:{line}" if line is not None else str(path)


def reports_errors(prog: str) -> Callable[[F], F]:
    """Decorate an entry point so bad input or configuration prints one line and exits with status 2,
    and an interruption prints one line and exits with 128 + the signal number.

    Goes *inside* ``@hydra.main`` (bad input: Hydra would print a traceback) and *outside* it
    (configuration errors happen while Hydra composes, before the function runs).
    """

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                with _hydra_raises():
                    return fn(*args, **kwargs)
            except StanceError as err:
                logging.getLogger(prog).debug("bad input", exc_info=True)
                print(f"{prog}: error: {err}", file=sys.stderr)
                sys.exit(2)
            except KeyboardInterrupt as err:
                hint = getattr(err, "hint", "")
                print(f"{prog}: interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
                sys.exit(128 + int(getattr(err, "signum", signal.SIGINT)))
            except Exception as err:
                line = config_error_line(err)
                if line is None:
                    raise
                logging.getLogger(prog).debug("bad configuration", exc_info=True)
                print(f"{prog}: error: {line}", file=sys.stderr)
                sys.exit(2)

        return wrapper  # type: ignore[return-value]

    return deco
