"""Messages for the operator, on stderr (stdout stays for what a caller reads),
and copied to the run's log file once one is opened."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

COLOURS = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2"}
_ANSI = re.compile(r"\033\[[0-9;]*m")
_log: list[TextIO] = []


class PipelineError(Exception):
    """A failure to report in one sentence, without a traceback."""


def paint(text: str, colour: str) -> str:
    return f"\033[{COLOURS[colour]}m{text}\033[0m" if sys.stderr.isatty() else text


def line(text: str, colour: str | None = None) -> None:
    """A line as it is (a table row: events, changes)."""
    shown = paint(text, colour) if colour else text
    print(shown, file=sys.stderr, flush=True)
    for log in _log:
        log.write(_ANSI.sub("", shown) + "\n")
        log.flush()


def say(message: str, colour: str | None = None) -> None:
    """A time-stamped message."""
    line(f"[{datetime.now(UTC).strftime('%H:%M:%S')}] {message}", colour)


def record_to(path: Path) -> Path:
    """Copy every message from now on to a log file (.deploy-logs/<env>-<time>.log)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _log.append(path.open("a", encoding="utf-8"))
    return path
