"""Pure parts of the communicator: SCP framing, the upload tree walk, the tar stream, `none`."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amibake.communicator import scp, tree
from amibake.communicator.none import NoneCommunicator
from amibake.errors import CommunicatorError

names = st.text(st.characters(blacklist_characters="/\n\0", blacklist_categories=("Cs",)),
                min_size=1, max_size=40).filter(lambda n: n not in (".", ".."))


def test_file_and_dir_headers() -> None:
    assert scp.file_header("a.txt", 12, 0o644) == b"C0644 12 a.txt\n"
    assert scp.dir_header("d", 0o755) == b"D0755 0 d\n"
    assert scp.file_header("x", 0, 0o104755) == b"C4755 0 x\n"  # only permission bits travel


@pytest.mark.parametrize("bad", ["", "a/b", ".", "..", "a\nb"])
def test_header_rejects_non_plain_names(bad: str) -> None:
    with pytest.raises(CommunicatorError, match="not a plain file name"):
        scp.file_header(bad, 1, 0o644)


@given(name=names, size=st.integers(min_value=0, max_value=2**40), mode=st.integers(0, 0o7777))
def test_header_roundtrip(name: str, size: int, mode: int) -> None:
    h = scp.parse_header(scp.file_header(name, size, mode))
    assert (h.kind, h.mode, h.size, h.name) == ("C", mode, size, name)


@pytest.mark.parametrize("line", [b"X0644 1 a\n", b"C0644 -1 a\n", b"C0644 1 a/b\n", b"D0755 0 ..\n", b""])
def test_parse_header_rejects_garbage(line: bytes) -> None:
    with pytest.raises(CommunicatorError):
        scp.parse_header(line)


def test_ack_error_message() -> None:
    assert str(scp.ack_error(1, b"scp: /x: Permission denied\n")) == "scp: /x: Permission denied"
    assert str(scp.ack_error(2, b"")) == "status 2"


@pytest.mark.parametrize(("rel", "patterns", "expected"), [
    ("a.log", ["*.log"], True),
    ("sub/a.log", ["*.log"], True),
    ("sub/a.log", ["sub/*.log"], True),
    ("sub/a.txt", ["sub/*.log"], False),
    ("cache", ["cache/"], True),
    ("cache", ["./cache"], True),
    ("x/cache", ["cache"], True),
    ("keep", [], False),
    ("keep", [""], False),
])
def test_is_excluded(rel: str, patterns: list[str], expected: bool) -> None:
    assert tree.is_excluded(rel, patterns) is expected


def test_split_source_trailing_slash_rule() -> None:
    assert tree.split_source("a/dir/") == (Path("a/dir"), None)
    assert tree.split_source("a/dir") == (Path("a/dir"), "dir")
    assert tree.split_source("a/dir/.")[1] == "dir"


def _tree(root: Path) -> None:
    (root / "b" / "c").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "b" / "x.log").write_text("x")
    (root / "b" / "c" / "d.txt").write_text("dd")
    (root / "z").symlink_to("b")


def test_walk_order_excludes_and_symlinks(tmp_path: Path) -> None:
    _tree(tmp_path)
    rels = [(e.rel, e.is_dir, e.size) for e in tree.walk(tmp_path, ["*.log"])]
    assert rels == [
        ("a.txt", False, 1), ("b", True, 0), ("b/c", True, 0), ("b/c/d.txt", False, 2),
        ("z", True, 0), ("z/c", True, 0), ("z/c/d.txt", False, 2),
    ]
    assert [e.rel for e in tree.walk(tmp_path, ["b", "z"])] == ["a.txt"]


def test_walk_detects_symlink_loops(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "up").symlink_to("..")
    with pytest.raises(CommunicatorError, match="loop"):
        tree.walk(tmp_path)


def test_walk_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(CommunicatorError, match="cannot read"):
        tree.walk(tmp_path / "missing")
    (tmp_path / "f").write_text("")
    with pytest.raises(CommunicatorError, match="not a directory"):
        tree.walk(tmp_path / "f")


def _stream(entries: list[tree.Entry]) -> bytes:
    return b"".join(tree.tar_stream(entries, 1000))


def test_tar_stream_reads_back_with_tarfile(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _tree(src)
    (src / ("long-" + "n" * 150)).write_text("long name")
    (src / "b" / "c" / "d.txt").chmod(0o700)
    data = _stream(tree.walk(src))
    assert len(data) % tree.TAR_RECORD == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        members = {m.name: m for m in tf.getmembers()}
        assert members["b/c/d.txt"].mode == 0o700
        assert members["b/c"].isdir()
        assert members["b"].uid == 0 and members["b"].uname == ""
        extract = tf.extractfile("long-" + "n" * 150)
        assert extract is not None and extract.read() == b"long name"
        assert members["z/c/d.txt"].size == 2


@given(files=st.dictionaries(names, st.binary(max_size=1500), max_size=8))
def test_tar_stream_roundtrip_property(files: dict[str, bytes]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for name, content in files.items():
            (root / name).write_bytes(content)
        data = _stream(tree.walk(root))
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            got = {}
            for m in tf.getmembers():
                fobj = tf.extractfile(m)
                assert fobj is not None
                got[m.name] = fobj.read()
        assert got == files


def test_iter_chunks_fails_when_the_file_shrinks(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"abc")
    assert b"".join(tree.iter_chunks(f, 3, 2)) == b"abc"
    with pytest.raises(CommunicatorError, match="shrank"):
        list(tree.iter_chunks(f, 5, 2))


def test_none_communicator_explains_itself() -> None:
    comm = NoneCommunicator()
    with pytest.raises(CommunicatorError, match='communicator is "none"'):
        comm.run("true")
    with pytest.raises(CommunicatorError, match="upload to /tmp/x"):
        comm.upload("/tmp/x", b"")
    comm.close()
