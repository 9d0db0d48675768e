"""Filesystem functions: ``file``, ``filebase64``, ``fileexists``, ``fileset``, ``pathexpand`` (bound to
the template's directory) and the path functions ``abspath``, ``basename``, ``dirname``."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

from amibake.template.hcl.evaluator import FunctionError
from amibake.template.hcl.functions._common import (
    MAX_FILE_BYTES,
    Func,
    _s,
)


def _fs(basedir: Path) -> dict[str, Func]:
    def resolve(p: Any) -> Path:
        path = Path(os.path.expanduser(_s(p, "path")))
        return path if path.is_absolute() else basedir / path

    def read(p: Any) -> bytes:
        """A regular file's bytes, at most MAX_FILE_BYTES (``/dev/zero`` never ends)."""
        path = resolve(p)
        # O_NONBLOCK: opening a FIFO would wait for a writer; a regular file ignores the flag
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
                raise FunctionError(f'"{_s(p)}" is not a regular file')
            data = fh.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise FunctionError(f'"{_s(p)}" is larger than the {MAX_FILE_BYTES:,} bytes a template may read')
        return data

    def file(p: Any) -> str:
        try:
            data = read(p)
        except FileNotFoundError:
            raise FunctionError(f'no file exists at "{_s(p)}"') from None
        except IsADirectoryError:
            raise FunctionError(f'"{_s(p)}" is a directory, not a file') from None
        except OSError as e:
            raise FunctionError(f'cannot read "{_s(p)}": {e.strerror or e}') from None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise FunctionError(
                f'contents of "{_s(p)}" are not valid UTF-8; use filebase64 instead'
            ) from None

    def filebase64(p: Any) -> str:
        try:
            return base64.b64encode(read(p)).decode()
        except FileNotFoundError:
            raise FunctionError(f'no file exists at "{_s(p)}"') from None
        except OSError as e:
            raise FunctionError(f'cannot read "{_s(p)}": {e.strerror or e}') from None

    def fileexists(p: Any) -> bool:
        path = resolve(p)
        if path.is_dir():
            raise FunctionError(f'"{_s(p)}" is a directory, not a file')
        return path.is_file()

    def fileset(p: Any, pattern: Any) -> list[str]:
        root = resolve(p)
        pat = _s(pattern, "pattern")
        if not root.is_dir():
            return []
        try:
            found = sorted(x.relative_to(root).as_posix() for x in root.glob(pat) if x.is_file())
        except ValueError as e:
            raise FunctionError(f"invalid glob pattern {pat!r}: {e}") from None
        return found

    def pathexpand(p: Any) -> str:
        return os.path.expanduser(_s(p))

    return {
        "file": file,
        "filebase64": filebase64,
        "fileexists": fileexists,
        "fileset": fileset,
        "pathexpand": pathexpand,
    }


def abspath(p: Any) -> str:
    return Path(os.path.abspath(_s(p))).as_posix()


def basename(p: Any) -> str:
    s = _s(p).rstrip("/")
    return (s.rsplit("/", 1)[-1] or "/") if s else "."


def dirname(p: Any) -> str:
    return os.path.dirname(_s(p).rstrip("/") or "/") or "."
