"""The chroot communicator (packer-plugin-sdk ``chroot/communicator.go``): provisioners run on this
machine, inside a mounted root filesystem.

A command runs as ``chroot <root> /bin/sh -c "<command>"`` (the command quoted as Go's ``strconv.Quote``
does), passed through the builder's ``command_wrapper`` and run by the local ``/bin/sh -c``; an upload
is a ``cp`` (through the wrapper too) into the root, a download reads the file under the root. The
amazon-chroot builder makes one for its mount point; it is not a template-selectable communicator.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from amibake import localexec
from amibake.communicator.base import CommandTimeoutError, Communicator, LineSink
from amibake.errors import CommunicatorError

#: ``command_wrapper`` rendered for one command (``{{.Command}}`` replaced)
CommandWrapper = Callable[[str], str]


def go_quote(text: str) -> str:
    """``strconv.Quote``: a double-quoted string with Go's escapes (backslash, double quote, control
    characters); ``$`` and backquotes are left as they are, as Packer leaves them."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class ChrootCommunicator(Communicator):
    """Runs commands and copies files into the root filesystem mounted at ``root``."""

    def __init__(self, root: str, wrap: CommandWrapper | None = None) -> None:
        self.root = root
        self.wrap: CommandWrapper = wrap or (lambda command: command)

    def inside(self, path: str) -> str:
        """The host path of ``path`` in the chroot (``..`` never leads out of the root)."""
        return os.path.join(self.root, posixpath.normpath("/" + path).lstrip("/"))

    def _shell(self, command: str, *, stdout: LineSink | None = None, stderr: LineSink | None = None,
               timeout: float | None = None) -> int:
        try:
            return localexec.run(["/bin/sh", "-c", self.wrap(command)], stdout=stdout, stderr=stderr,
                                 timeout=timeout)
        except localexec.LocalCommandTimeout as exc:
            raise CommandTimeoutError(str(exc)) from exc
        except localexec.LocalCommandError as exc:
            raise CommunicatorError(str(exc)) from exc

    def run(self, command: str, *, stdout: LineSink | None = None, stderr: LineSink | None = None,
            pty: bool = False, timeout: float | None = None, stdin: bytes | None = None) -> int:
        if stdin:
            raise CommunicatorError("the chroot communicator cannot pass standard input to a command")
        status = self._shell(f"chroot {self.root} /bin/sh -c {go_quote(command)}", stdout=stdout,
                             stderr=stderr, timeout=timeout)
        return 128 - status if status < 0 else status

    def _cp(self, command: str) -> None:
        tail: list[str] = []
        status = self._shell(command, stderr=tail.append)
        if status != 0:
            detail = "; ".join(tail[-5:])
            raise CommunicatorError(f"{command} {localexec.exit_description(status)}"
                                    + (f": {detail}" if detail else ""))

    def upload(self, dst: str, src: Path | BinaryIO | bytes, *, mode: int = 0o644) -> None:
        fd, tmp = tempfile.mkstemp(prefix="packer-amazon-chroot")
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(src, bytes):
                    out.write(src)
                elif isinstance(src, Path):
                    with src.open("rb") as f:
                        shutil.copyfileobj(f, out)
                else:
                    shutil.copyfileobj(src, out)
            os.chmod(tmp, mode)
            self._cp(f"cp {shlex.quote(tmp)} {shlex.quote(self.inside(dst))}")
        finally:
            os.unlink(tmp)

    def upload_dir(self, dst: str, src: str, exclude: Sequence[str] = ()) -> None:
        if exclude:
            raise CommunicatorError("the chroot communicator cannot exclude files from a directory upload "
                                    "(Packer's copies everything)")
        if src.endswith("/"):
            src += "."  # the contents, hidden files included, as Packer's
        self._cp(f"cp -R {shlex.quote(src)} {shlex.quote(self.inside(dst))}")

    def download(self, src: str, dst: Path | BinaryIO) -> None:
        path = self.inside(src)
        try:
            with open(path, "rb") as f:
                if isinstance(dst, Path):
                    with dst.open("wb") as out:
                        shutil.copyfileobj(f, out)
                else:
                    shutil.copyfileobj(f, dst)
        except OSError as exc:
            raise CommunicatorError(f"cannot download {src} from the chroot: {exc.strerror or exc}") from exc

    def download_dir(self, src: str, dst: str, exclude: Sequence[str] = ()) -> None:
        raise CommunicatorError("DownloadDir is not implemented for amazon-chroot")

    def close(self) -> None:
        pass
