"""Local directory trees for uploads: a walk with exclude patterns, and tar headers for a stream.

Pure code: no SSH here, so it is unit-tested on its own.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from amibake.errors import CommunicatorError

TAR_BLOCK = 512
TAR_RECORD = 10240


@dataclass(frozen=True)
class Entry:
    """One file or directory under the uploaded root; ``rel`` uses ``/`` and never starts with it."""

    rel: str
    #: the local path (a string: cheaper than a Path for thousands of small files)
    path: str
    is_dir: bool
    mode: int
    size: int

    @property
    def name(self) -> str:
        return posixpath.basename(self.rel)


def is_excluded(rel: str, patterns: Sequence[str]) -> bool:
    """True when a glob in ``patterns`` matches the relative path or its base name.

    A pattern with a trailing ``/`` matches directories the same way as without it (the caller only
    asks about paths it walks). ``*`` matches across ``/`` in the relative-path form.
    """
    name = posixpath.basename(rel)
    for pat in patterns:
        p = pat.rstrip("/").removeprefix("./")
        if not p:
            continue
        if fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p):
            return True
    return False


def walk(root: Path, exclude: Sequence[str] = ()) -> list[Entry]:
    """Every entry under ``root`` in depth-first order (a directory before its contents, names
    sorted), symbolic links followed, excluded paths (and everything under them) left out."""
    try:
        st = root.stat()
    except OSError as exc:
        raise CommunicatorError(f"cannot read {root}: {exc.strerror}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise CommunicatorError(f"{root} is not a directory")
    out: list[Entry] = []
    _walk(str(root), "", exclude, out, {(st.st_dev, st.st_ino)})
    return out


def _walk(directory: str, prefix: str, exclude: Sequence[str], out: list[Entry],
          ancestors: set[tuple[int, int]]) -> None:
    try:
        with os.scandir(directory) as it:
            items = sorted(it, key=lambda d: d.name)
    except OSError as exc:
        raise CommunicatorError(f"cannot list {directory}: {exc.strerror}") from exc
    for item in items:
        rel = f"{prefix}{item.name}"
        if exclude and is_excluded(rel, exclude):
            continue
        try:
            st = item.stat()  # follows symbolic links
        except OSError as exc:
            raise CommunicatorError(f"cannot read {item.path}: {exc.strerror}") from exc
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                raise CommunicatorError(f"symbolic link loop at {item.path}")
            out.append(Entry(rel, item.path, True, mode, 0))
            _walk(item.path, rel + "/", exclude, out, ancestors | {key})
        elif stat.S_ISREG(st.st_mode):
            out.append(Entry(rel, item.path, False, mode, st.st_size))
        # sockets, fifos, devices: skipped (nothing to copy)


def split_source(src: str) -> tuple[Path, str | None]:
    """Packer's trailing-slash rule: ``("dir/")`` -> (dir, None): copy the contents;
    ``("dir")`` -> (dir, "dir"): copy the directory itself under its base name."""
    if src.endswith(("/", os.sep)):
        return Path(src), None
    return Path(src), os.path.basename(os.path.normpath(src))


def tar_header(entry: Entry) -> bytes:
    """A tar header for ``entry``: owner 0/0 without names (files end up owned by whoever extracts
    them, as scp would leave them) and mtime 0 (extract with ``-m``, as scp without ``-p``).

    Plain ustar for names up to 100 bytes (built directly: ``tarfile`` takes ~10x longer, which
    shows on trees of thousands of small files); GNU long-name records beyond that.
    """
    name = entry.rel + ("/" if entry.is_dir else "")
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > 100:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE if entry.is_dir else tarfile.REGTYPE
        info.mode = entry.mode
        info.size = 0 if entry.is_dir else entry.size
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        return info.tobuf(tarfile.GNU_FORMAT, "utf-8", "surrogateescape")
    size = 0 if entry.is_dir else entry.size
    if size >= 8**11:
        raise CommunicatorError(f"{entry.path} is too large for a tar stream (8 GiB or more)")
    head = b"".join((
        raw.ljust(100, b"\0"),
        b"%07o\0" % (entry.mode & 0o7777),
        b"0000000\0",  # uid
        b"0000000\0",  # gid
        b"%011o\0" % size,
        b"00000000000\0",  # mtime
        b" " * 8,  # checksum, counted as spaces
        b"5" if entry.is_dir else b"0",
        b"\0" * 100,  # link name
        b"ustar\x0000",
        b"\0" * 32 * 2,  # uname, gname
        b"\0" * 16,  # devmajor, devminor
        b"\0" * 155,  # prefix
    )).ljust(TAR_BLOCK, b"\0")
    checksum = b"%06o\0 " % sum(head)
    return head[:148] + checksum + head[156:]


def tar_padding(size: int) -> bytes:
    """Zero bytes that complete a member's data of ``size`` bytes to a whole block."""
    return b"\0" * (-size % TAR_BLOCK)


def tar_trailer(written: int) -> bytes:
    """The end-of-archive blocks after ``written`` bytes, padded to a whole record."""
    end = written + 2 * TAR_BLOCK
    return b"\0" * (2 * TAR_BLOCK + (-end % TAR_RECORD))


def tar_stream(entries: Sequence[Entry], chunk: int = 1 << 20) -> Iterator[bytes]:
    """The whole tar archive of ``entries``, in pieces of about ``chunk`` bytes."""
    buf = bytearray()
    written = 0
    for e in entries:
        buf += tar_header(e)
        if not e.is_dir:
            for data in iter_chunks(e.path, e.size, chunk):
                buf += data
                if len(buf) >= chunk:
                    written += len(buf)
                    yield bytes(buf)
                    buf.clear()
            buf += tar_padding(e.size)
    written += len(buf)
    buf += tar_trailer(written)
    yield bytes(buf)


def iter_chunks(path: str | Path, size: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Exactly ``size`` bytes of ``path`` (the size announced in a header); fails if the file shrank."""
    left = size
    with open(path, "rb", buffering=0) as f:
        while left:
            data = f.read(min(chunk, left))
            if not data:
                raise CommunicatorError(f"{path} shrank while it was being uploaded")
            left -= len(data)
            yield data
