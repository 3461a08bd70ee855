"""Whether this process is exiting on an error: set by the command layer and by an uncaught exception, read at exit
(under torchrun, a rank leaving on an error closes its group without waiting for the others)."""

from __future__ import annotations

_leaving_on_error = False


def leaving_on_error() -> None:
    """Mark this process as exiting on an error."""
    global _leaving_on_error
    _leaving_on_error = True


def is_leaving_on_error() -> bool:
    return _leaving_on_error
