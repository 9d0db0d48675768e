"""JSON with source positions and duplicate-key detection.

``json.loads`` gives no positions, and Packer's users deserve ``file:line:col`` for every problem.
:func:`loads` first lets the standard library judge the syntax (its error carries the offset), then
walks the text once more with a small scanner that records where every object key stands and
rejects duplicate keys, as Packer does.
"""

from __future__ import annotations

import json
import re
from typing import Any

from amibake.errors import Pos, Problem


class PosDict(dict[str, Any]):
    """A JSON object that remembers where it and each of its keys stand."""

    pos: Pos
    key_pos: dict[str, Pos]


class PosList(list[Any]):
    """A JSON array that remembers where each element stands."""

    pos: Pos
    item_pos: list[Pos]


_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")


def syntax_error(filename: str, text: str, err: json.JSONDecodeError) -> Problem:
    """Packer's shape: the message, line and column, the line before and the line with a caret."""
    lines = text.splitlines()
    line, col = err.lineno, err.colno
    excerpt = []
    if line >= 2 and line - 2 < len(lines):
        excerpt.append(f"{line - 1:5d}: {lines[line - 2]}")
    current = lines[line - 1] if 0 < line <= len(lines) else ""
    excerpt.append(f"{line:5d}: {current}")
    excerpt.append(" " * (col + 6) + "^")
    message = (
        f"Error parsing JSON: {err.msg}\nAt line {line}, column {col} (offset {err.pos}):\n"
        + "\n".join(excerpt)
    )
    return Problem(message, pos=Pos(filename, line, col))


class _Scanner:
    def __init__(self, filename: str, text: str) -> None:
        self.filename = filename
        self.text = text
        self.problems: list[Problem] = []
        self._line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
        self._decoder = json.JSONDecoder()

    def pos(self, offset: int) -> Pos:
        import bisect

        i = bisect.bisect_right(self._line_starts, offset) - 1
        return Pos(self.filename, i + 1, offset - self._line_starts[i] + 1)

    def ws(self, i: int) -> int:
        m = _WS.match(self.text, i)
        return m.end() if m else i

    def value(self, i: int, path: str) -> tuple[Any, int]:
        i = self.ws(i)
        c = self.text[i]
        if c == "{":
            return self.obj(i, path)
        if c == "[":
            return self.arr(i, path)
        # scalars: the standard decoder already accepted the document, reuse it per value
        val, end = self._decoder.raw_decode(self.text, i)
        return val, end

    def obj(self, i: int, path: str) -> tuple[PosDict, int]:
        out = PosDict()
        out.pos = self.pos(i)
        out.key_pos = {}
        i = self.ws(i + 1)
        if self.text[i] == "}":
            return out, i + 1
        while True:
            i = self.ws(i)
            key_start = i
            key, i = self._decoder.raw_decode(self.text, i)
            i = self.ws(i)
            i += 1  # ':'
            kpath = f"{path}.{key}" if path else str(key)
            val, i = self.value(i, kpath)
            if key in out:
                first = out.key_pos[key]
                self.problems.append(
                    Problem(
                        f'duplicate key "{key}" (first defined at line {first.line})',
                        key=kpath,
                        pos=self.pos(key_start),
                    )
                )
            else:
                out.key_pos[key] = self.pos(key_start)
            out[key] = val
            i = self.ws(i)
            if self.text[i] == ",":
                i += 1
                continue
            return out, i + 1  # '}'

    def arr(self, i: int, path: str) -> tuple[PosList, int]:
        out = PosList()
        out.pos = self.pos(i)
        out.item_pos = []
        i = self.ws(i + 1)
        if self.text[i] == "]":
            return out, i + 1
        n = 0
        while True:
            i = self.ws(i)
            out.item_pos.append(self.pos(i))
            val, i = self.value(i, f"{path}[{n}]")
            out.append(val)
            n += 1
            i = self.ws(i)
            if self.text[i] == ",":
                i += 1
                continue
            return out, i + 1  # ']'


class _NotJson(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _reject_constant(token: str) -> Any:
    raise _NotJson(token)


def loads(filename: str, text: str) -> tuple[Any, list[Problem]]:
    """Parse ``text``; returns the value (objects as :class:`PosDict`) and the problems found.

    A syntax error returns ``(None, [problem])``.
    """
    try:
        json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        return None, [syntax_error(filename, text, e)]
    except _NotJson as e:
        # NaN and Infinity: Python's json accepts them, JSON (and Packer) does not
        at = max(0, text.find(e.token))
        msg = f"invalid character {e.token[0]!r} looking for beginning of value"
        err = json.JSONDecodeError(msg, text, at)
        return None, [syntax_error(filename, text, err)]
    except RecursionError:
        return None, [Problem("Error parsing JSON: nested too deeply", pos=Pos(filename))]
    scanner = _Scanner(filename, text)
    try:
        value, _ = scanner.value(0, "")
    except RecursionError:
        return None, [Problem("Error parsing JSON: nested too deeply", pos=Pos(filename))]
    return value, scanner.problems
