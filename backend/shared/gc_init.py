"""The cyclic garbage collector around a handler's init.

Importing a function's modules allocates tens of thousands of objects that
live as long as its execution environment, and CPython's collector walks them
again and again while they load: about 6% of init (make bench counted 93 M of
the status function's 1,573 M instructions). So each handler module turns the
collector off as its first statement and calls `loaded()` as its last: what
init built moves to the permanent generation (gc.freeze), which later
collections, during requests, no longer walk, and the collector is on again.
A module that fails to load leaves it off, in an execution environment that
Lambda then discards."""

from __future__ import annotations

import gc


def loaded() -> None:
    """The end of a handler module's init."""
    gc.freeze()
    gc.enable()
