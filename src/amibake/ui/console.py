"""Packer-shaped output: ``==> name: step`` and ``    name: detail`` lines per build.

One :class:`Console` per run, shared by every build thread (a lock keeps lines whole); each build
gets a :class:`BuildUi` that prefixes its name. Every line goes through the run's
:class:`~amibake.ui.redact.Redactor`, so a secret (sensitive variable, password, private key) never
reaches the terminal, in any encoding.
``-machine-readable`` switches to Packer's ``timestamp,target,type,data`` lines.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import datetime
from typing import TextIO

import click

from amibake.ui import machine
from amibake.ui.redact import SENSITIVE, Redactor

__all__ = ["SENSITIVE", "BuildUi", "Console", "Redactor", "human_duration"]

# Packer's per-build colours, in order; headlines bold, details plain
_COLORS = ["green", "cyan", "magenta", "yellow", "blue"]
_RED = "red"


def _style(text: str, color: str, bold: bool = True) -> str:
    return click.style(text, fg=color, bold=bold) if color else text


class Console:
    def __init__(
        self,
        *,
        out: TextIO | None = None,
        err: TextIO | None = None,
        color: bool | None = None,
        machine_readable: bool = False,
        timestamps: bool = False,
        redactor: Redactor | None = None,
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.machine = machine_readable
        self.color = (self.out.isatty() if color is None else color) and not machine_readable
        self.timestamps = timestamps
        self.redact = redactor or Redactor()
        self._lock = threading.Lock()
        self._n = 0

    def _write(self, text: str, *, stream: TextIO | None = None) -> None:
        text = self.redact(text)
        with self._lock:
            s = stream or self.out
            try:
                s.write(text + "\n")
                s.flush()
            except (OSError, ValueError):
                # the reader is gone (`amibake build | head`, a killed launcher), or the output file
                # is at a size limit or on a full disk: the build and its cleanup go on; their
                # output has nowhere to go (Packer ignores UI write errors too)
                pass

    def _stamp(self, text: str) -> str:
        if self.timestamps and not self.machine:
            return datetime.now().strftime("%Y-%m-%dT%H:%M:%S%z: ") + text
        return text

    def say(self, text: str) -> None:
        if self.machine:
            self._write(machine.line("", "ui", "say", self.redact(text)))
        else:
            self._write(self._stamp(text))

    def error(self, text: str) -> None:
        if self.machine:
            self._write(machine.line("", "ui", "error", self.redact(text)))
        else:
            self._write(self._stamp(_style(text, _RED) if self.color else text), stream=self.err)

    def machine_line(self, target: str, type_: str, *data: str) -> None:
        if self.machine:
            self._write(machine.line(target, type_, *(self.redact(d) for d in data)))

    def build_ui(self, name: str) -> BuildUi:
        color = _COLORS[self._n % len(_COLORS)] if self.color else ""
        self._n += 1
        return BuildUi(self, name, color)


class BuildUi:
    """Implements :class:`amibake.api.Ui` for one build."""

    def __init__(self, console: Console, name: str, color: str) -> None:
        self.console = console
        self.name = name
        self.color = color
        self._last_progress: dict[str, float] = {}

    def _line(self, marker: str, text: str, color: str, bold: bool = True) -> None:
        c = self.console
        for part in text.splitlines() or [""]:
            body = f"{marker} {self.name}: {part}" if marker else f"    {self.name}: {part}"
            body = _style(body, color, bold)
            c._write(c._stamp(body))

    def say(self, message: str) -> None:
        if self.console.machine:
            self.console._write(
                machine.line(self.name, "ui", "say", self.console.redact(f"==> {self.name}: {message}"))
            )
            return
        self._line("==>", message, self.color)

    def message(self, message: str) -> None:
        if self.console.machine:
            self.console._write(
                machine.line(self.name, "ui", "message", self.console.redact(f"    {self.name}: {message}"))
            )
            return
        self._line("", message, self.color, bold=False)

    def error(self, message: str) -> None:
        if self.console.machine:
            self.console._write(
                machine.line(self.name, "ui", "error", self.console.redact(f"==> {self.name}: {message}"))
            )
            return
        self._line("==>", message, _RED if self.console.color else "")

    def progress(self, label: str, fraction: float | None) -> None:
        """Shown at start, at each 10 % step, and at the end; at most once a second otherwise."""
        now = time.monotonic()
        key = label
        last = self._last_progress.get(key)
        if fraction is None:
            if last is None or now - last >= 5:
                self._last_progress[key] = now
                self.message(f"{label}...")
            return
        pct = int(max(0.0, min(1.0, fraction)) * 100)
        bucket = float(pct // 10)
        if last is not None and bucket <= last and pct < 100:
            return
        self._last_progress[key] = bucket
        self.message(f"{label}: {pct}%")

    def machine_line(self, type_: str, *data: str) -> None:
        self.console.machine_line(self.name, type_, *data)

    def ask(self, question: str) -> str:
        if not sys.stdin.isatty():
            return ""
        with self.console._lock:
            self.console.out.write(self.console.redact(f"==> {self.name}: {question} "))
            self.console.out.flush()
            try:
                return sys.stdin.readline().strip()
            except (OSError, KeyboardInterrupt):
                return ""


def human_duration(seconds: float) -> str:
    """Packer's ``Build 'x' finished after 1 minute 2 seconds`` style."""
    ms_total = round(seconds * 1000)
    h, rem = divmod(ms_total, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    parts = []
    for n, unit in ((h, "hour"), (m, "minute"), (s, "second"), (ms, "millisecond")):
        if n:
            parts.append(f"{n} {unit}{'s' if n != 1 else ''}")
    return " ".join(parts) or "0 seconds"
