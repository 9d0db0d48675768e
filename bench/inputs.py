"""The upload benchmark's inputs: one 256 MiB file and a tree of 2,000 small files.

Same shape as the Packer baseline's ``gen-inputs.sh``: ``big-256MiB.bin`` (random bytes) and
``tree/d00..d19/f000..f099.bin`` (1-4 KiB of random bytes each, sizes from a fixed seed), files
0644, directories 0755. An existing complete set is kept.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

BIG_BYTES = 256 * 1024 * 1024
TREE_DIRS = 20
TREE_FILES = 2000

#: what the upload templates' shell provisioner prints for the tree, and what OpenSSH copies are checked with
TREE_SHA_CMD = "find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1"


@dataclass
class Inputs:
    big: Path
    big_sha256: str
    tree: Path
    tree_sha256: str
    tree_bytes: int


def tree_sha(path: Path) -> str:
    return subprocess.run(
        TREE_SHA_CMD, shell=True, cwd=path, check=True, capture_output=True, text=True
    ).stdout.strip()


def file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def ensure(root: Path) -> Inputs:
    root.mkdir(parents=True, exist_ok=True)
    big, tree = root / "big-256MiB.bin", root / "tree"
    if not big.exists() or big.stat().st_size != BIG_BYTES:
        tmp = big.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for _ in range(BIG_BYTES // (1 << 20)):
                f.write(os.urandom(1 << 20))
        tmp.chmod(0o644)
        tmp.rename(big)
    files = [p for p in tree.rglob("*") if p.is_file()] if tree.exists() else []
    if len(files) != TREE_FILES:
        subprocess.run(["rm", "-rf", str(tree)], check=True)
        sizes = random.Random(2000)
        per = TREE_FILES // TREE_DIRS
        for d in range(TREE_DIRS):
            dd = tree / f"d{d:02d}"
            dd.mkdir(parents=True)
            dd.chmod(0o755)
            for i in range(per):
                p = dd / f"f{i:03d}.bin"
                p.write_bytes(os.urandom(sizes.randint(1024, 4096)))
                p.chmod(0o644)
        tree.chmod(0o755)
        files = [p for p in tree.rglob("*") if p.is_file()]
    return Inputs(
        big=big,
        big_sha256=file_sha(big),
        tree=tree,
        tree_sha256=tree_sha(tree),
        tree_bytes=sum(p.stat().st_size for p in files),
    )


def warm_cache(inputs: Inputs) -> None:
    """Read every input once, so every contender reads them from the page cache."""
    file_sha(inputs.big)
    subprocess.run(f"tar -C {inputs.tree} -cf - . > /dev/null", shell=True, check=True)
