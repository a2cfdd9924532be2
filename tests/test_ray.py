"""`make encode engine=ray` on a real local Ray (2 workers): the same shard bytes as one process, and a worker that
dies in the middle of a shard leaves no shard that looks complete; Ray retries its part and the result is the same."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from plumbing.settings import DataSettings, ModelSettings
from steps.encode import encode_corpus, encode_on_ray

DATA = DataSettings("scifact", "test", 2)
MODEL = ModelSettings("smollm2", device="cpu")
SHARD = 4  # 20 documents -> 5 shards over 2 parts


def die_in_first_shard(dataset, data, model, shard_size, parts, part) -> str:
    """A Ray part whose first attempt on part 0 dies after a shard's meta file and before its vectors file."""
    import steps.encode as encode
    from plumbing.shards import write_shard
    from steps.encode import encode_part

    flag = Path(os.environ["KT_DIE_MARKER"])
    if part == 0 and not flag.exists():
        flag.touch()

        def dying(folder, number, doc_ids, batch):
            write_shard(folder, number, doc_ids, batch)
            (folder / f"part-{number:05d}.npy").unlink()  # the vectors file is the one written last
            os._exit(1)

        encode.write_shard = dying
    return encode_part(dataset, data, model, shard_size, parts, part)


@pytest.fixture(scope="module")
def single(tmp_path_factory, sliced):
    root = tmp_path_factory.mktemp("single")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KEYTOKENS_INDEXES", str(root))
        folder = encode_corpus(DATA.load(), DATA, MODEL, shard_size=SHARD)
    return {p.name: p.read_bytes() for p in folder.glob("part-*")}


def _on_ray(root: Path, monkeypatch, **kwargs) -> dict[str, bytes]:
    monkeypatch.setenv("KEYTOKENS_INDEXES", str(root))
    folder = encode_on_ray(DATA.load(), DATA, MODEL, workers=2, shard_size=SHARD, **kwargs)
    assert not list(folder.glob("*.tmp"))
    return {p.name: p.read_bytes() for p in folder.glob("part-*")}


def test_ray_gives_the_single_process_bytes(single, tmp_path, monkeypatch):
    assert len(single) == 10 and _on_ray(tmp_path, monkeypatch) == single


def test_a_worker_killed_mid_shard_is_retried(single, tmp_path, monkeypatch):
    marker = tmp_path / "died"
    monkeypatch.setenv("KT_DIE_MARKER", str(marker))
    assert _on_ray(tmp_path / "indexes", monkeypatch, part_function=die_in_first_shard) == single
    assert marker.exists()  # the first attempt did die


def _segv_handler_library() -> bytes | None:
    """The shared library whose function handles SIGSEGV in this process now (None for the default action)."""
    import ctypes

    libc = ctypes.CDLL(None)
    action = ctypes.create_string_buffer(256)  # struct sigaction: the handler pointer comes first
    libc.sigaction(11, None, action)

    class DlInfo(ctypes.Structure):
        _fields_ = [("fname", ctypes.c_char_p), ("fbase", ctypes.c_void_p),
                    ("sname", ctypes.c_char_p), ("saddr", ctypes.c_void_p)]

    info = DlInfo()
    address = int.from_bytes(action.raw[:8], "little")
    return info.fname if address and libc.dladdr(ctypes.c_void_p(address), ctypes.byref(info)) else None


def test_ray_leaves_the_jvm_signal_handlers_in_place(single, tmp_path, monkeypatch):
    """Ray in a process that holds a JVM must not take over SIGSEGV: the JVM raises it on purpose (null checks)."""
    from common.jvm import start_jvm

    start_jvm()
    assert b"libjvm" in (_segv_handler_library() or b"")
    _on_ray(tmp_path, monkeypatch)
    assert b"libjvm" in (_segv_handler_library() or b"")
