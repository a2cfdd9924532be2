"""Atomic writes: concurrent writers of one file, and what a killed writer leaves behind."""
from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys

from plumbing.artifacts import write_json


def _write_many(path: str, times: int, start) -> None:
    from pathlib import Path
    start.wait()  # all writers begin together, as Ray parts do
    for _ in range(times):
        write_json(Path(path), {"same": "settings"})


def test_processes_writing_one_file_at_once_never_fail(tmp_path):
    """Ray parts started together all write settings.json: with one shared temporary name one rename lost."""
    path = tmp_path / "settings.json"
    context = multiprocessing.get_context("spawn")  # not fork: the test process may hold a JVM's threads
    start = context.Event()
    writers = [context.Process(target=_write_many, args=(str(path), 200, start)) for _ in range(4)]
    for writer in writers:
        writer.start()
    start.set()
    for writer in writers:
        writer.join()
    assert [w.exitcode for w in writers] == [0, 0, 0, 0]
    assert json.loads(path.read_text()) == {"same": "settings"}
    assert not list(tmp_path.glob("*.tmp"))


def test_a_killed_writers_temporary_is_swept_and_a_live_ones_kept(tmp_path):
    path = tmp_path / "part-00000.npy"
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"part-00000.npy.{socket.gethostname()}-{gone.stdout.strip()}.tmp"
    legacy = tmp_path / "part-00000.npy.tmp"
    live = tmp_path / f"part-00000.npy.{socket.gethostname()}-{os.getppid()}.tmp"
    other_file = tmp_path / f"part-00001.npy.{socket.gethostname()}-{gone.stdout.strip()}.tmp"
    for leftover in (dead, legacy, live, other_file):
        leftover.write_bytes(b"partial")
    write_json(path, {"complete": True})
    assert not dead.exists() and not legacy.exists()
    assert live.exists() and other_file.exists()  # a live writer's file, and another file's leftovers, stay
