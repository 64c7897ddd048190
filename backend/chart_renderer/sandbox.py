"""Renders a Vega-Lite spec in a child process (render.py) that is killed when
its resident memory passes RENDER_MEMORY_MB or it runs past RENDER_SECONDS: a
spec bomb fails its chart with the reason, and the function lives on.

The function itself is a second wall: it has no AWS permissions but its logs,
and Lambda ends it at its Timeout and MemorySize (template.yaml)."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The render process: resident memory and time before it is killed.
RENDER_MEMORY_MB = int(os.environ.get("CHART_RENDER_MEMORY_MB", "300"))
RENDER_SECONDS = float(os.environ.get("CHART_RENDER_SECONDS", "20"))


class SpecRejected(ValueError):
    """Vega-Lite refused the spec, or it draws more than the limits: the model may repair it."""


class RenderFailed(Exception):
    """The spec's rendering outgrew its memory or time, or the renderer broke."""


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


@dataclass
class SandboxedRenderer:
    """Validates and renders a spec in a child process (render.py): one at a
    time per execution environment (each may use RENDER_MEMORY_MB), killed
    when its resident memory passes that or it runs past RENDER_SECONDS. The
    child gets no environment but PYTHONPATH, PATH and LANG, and may not
    fetch anything."""

    memory_mb: int = RENDER_MEMORY_MB
    seconds: float = RENDER_SECONDS
    poll_seconds: float = 0.01
    last_peak_mb: float = 0.0  # the last render process's largest resident memory seen (make bench reads it)

    _one_at_a_time = threading.Lock()

    def render(self, spec: dict[str, Any], *, max_side: int, max_svg_bytes: int, scale: int) -> tuple[bytes, str]:
        """PNG and SVG of `spec`, drawn at most `max_side` pixels wide and high
        (before the PNG's `scale`), with at most `max_svg_bytes` of SVG."""
        limits = {"cpuSeconds": max(1, int(self.seconds)), "maxSvgBytes": max_svg_bytes, "maxSide": max_side, "scale": scale}
        with self._one_at_a_time:
            return self._render(spec, limits)

    def _render(self, spec: dict[str, Any], limits: dict[str, Any]) -> tuple[bytes, str]:
        # The package's own directories, so the child finds vl_convert as the
        # function does; nothing else of the function's environment.
        path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
        env = {"PYTHONPATH": path, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        script = Path(__file__).with_name("render.py")
        child = subprocess.Popen(  # noqa: S603 - the interpreter running us, on our own script
            [sys.executable, "-s", str(script), json.dumps(limits)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        peak: list[float] = [0.0]
        over: list[bool] = [False]

        def watch() -> None:
            while child.poll() is None:
                rss = _rss_mb(child.pid)
                peak[0] = max(peak[0], rss)
                if rss > self.memory_mb:
                    over[0] = True
                    child.kill()
                    return
                time.sleep(self.poll_seconds)

        watcher = threading.Thread(target=watch, name="chart-render-watch", daemon=True)
        watcher.start()
        try:
            out, err = child.communicate(json.dumps(spec).encode("utf-8"), timeout=self.seconds)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise RenderFailed(f"the chart took longer than {self.seconds:g} s to render") from None
        finally:
            watcher.join(timeout=1)
            self.last_peak_mb = peak[0]
        if over[0]:
            raise RenderFailed(
                f"the chart needed more than {self.memory_mb} MB to render; aggregate the data or simplify the spec"
            )
        if child.returncode != 0:
            if child.returncode in (-signal.SIGXCPU, -signal.SIGKILL):  # the child's CPU limit (soft, then hard)
                raise RenderFailed(f"the chart took longer than {self.seconds:g} s to render")
            raise RenderFailed(f"the chart renderer failed (exit {child.returncode}): {err.decode(errors='replace')[-300:]}")
        answer = json.loads(out)
        if not answer.get("ok"):
            raise SpecRejected(answer.get("invalid", "the spec could not be rendered"))
        return base64.b64decode(answer["png"]), answer["svg"]
