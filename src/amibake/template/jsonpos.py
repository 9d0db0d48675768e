"""JSON with source positions and duplicate-key detection.

``json.loads`` gives no positions, and Packer's users deserve ``file:line:col`` for every problem.
:func:`loads` first lets the standard library judge the syntax (its error carries the offset), then
walks the text once more with a small scanner that records where every object key stands and
rejects duplicate keys, as Packer does.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from typing import Any

from amibake.errors import Pos, Problem

#: the largest template or variables file amibake reads (real ones are kilobytes)
MAX_SOURCE_BYTES = 64 << 20


def read_source(path: str | os.PathLike[str], *, translate_newlines: bool = True) -> str:
    """A template, variables or HCL file's text, as ``Path.read_text(encoding="utf-8")`` gives it,
    but only from a regular file of at most :data:`MAX_SOURCE_BYTES` (``/dev/zero`` or a FIFO
    never ends). Raises OSError (with the reason) and UnicodeDecodeError as ``read_text`` does."""
    # O_NONBLOCK: opening a FIFO would wait for a writer; a regular file ignores the flag
    with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise OSError(errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL, kind, str(path))
        data = fh.read(MAX_SOURCE_BYTES + 1)
    if len(data) > MAX_SOURCE_BYTES:
        raise OSError(errno.EFBIG, f"larger than {MAX_SOURCE_BYTES >> 20} MiB", str(path))
    if b"\0" in data:
        raise OSError(errno.EINVAL, "a binary file (it contains NUL bytes), not text", str(path))
    text = data.decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n") if translate_newlines else text


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
        excerpt.append(f"{line - 1:5d}: {_clip(lines[line - 2])}")
    current = lines[line - 1] if 0 < line <= len(lines) else ""
    if col > 160:  # a very long line: show the part around the error
        current, col = "..." + current[col - 80:], 84
    excerpt.append(f"{line:5d}: {_clip(current)}")
    excerpt.append(" " * (col + 6) + "^")
    message = (
        f"Error parsing JSON: {err.msg}\nAt line {line}, column {col} (offset {err.pos}):\n"
        + "\n".join(excerpt)
    )
    return Problem(message, pos=Pos(filename, line, col))


def _clip(line: str, width: int = 200) -> str:
    return line if len(line) <= width else line[:width] + "..."


class _Scanner:
    def __init__(self, filename: str, text: str) -> None:
        self.filename = filename
        self.text = text
        self.problems: list[Problem] = []
        self._line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]
        self._decoder = json.JSONDecoder(parse_int=_parse_int)

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


#: Python refuses to convert longer digit strings to int (CVE-2020-10735); Go's decoder gives
#: "cannot unmarshal number ... into Go value of type float64" for such a number too
MAX_DIGITS = 4300


class _TooLong(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _parse_int(token: str) -> int:
    if len(token) > MAX_DIGITS:
        raise _TooLong(token)
    return int(token)


def _number_error(filename: str, text: str, token: str) -> Problem:
    at = max(0, text.find(token[:64]))
    line = text.count("\n", 0, at) + 1
    col = at - (text.rfind("\n", 0, at) + 1) + 1
    return Problem(
        f"Error parsing JSON: a number of {len(token.lstrip('-')):,} digits is out of range "
        f"(at most {MAX_DIGITS:,})",
        pos=Pos(filename, line, col),
    )


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
        json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int)
    except _TooLong as e:
        return None, [_number_error(filename, text, e.token)]
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
