"""One error type for bad input, reported as a single line by every entry point."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class StanceError(Exception):
    """Bad input or configuration. The message is one line naming the file and the problem."""


def where(path: object, line: int | None = None) -> str:
    """Format a location as ``path`` or ``path:line`` for error messages."""
    return f"{path}:{line}" if line is not None else str(path)


def reports_errors(prog: str) -> Callable[[F], F]:
    """Decorate an entry point so a StanceError prints one line and exits with status 2.

    Goes *inside* ``@hydra.main`` so Hydra does not print a traceback for bad input.
    """

    def deco(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except StanceError as err:
                logging.getLogger(prog).debug("bad input", exc_info=True)
                print(f"{prog}: error: {err}", file=sys.stderr)
                sys.exit(2)

        return wrapper  # type: ignore[return-value]

    return deco
