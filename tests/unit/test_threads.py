"""The thread policy (common/threads.py): the cores this process may run on, an override, passive OpenMP waiting."""
from __future__ import annotations

import os
import subprocess
import sys

from common.threads import usable_cores


def test_threads_follow_the_affinity_mask_not_the_machine(monkeypatch):
    monkeypatch.delenv("KEYTOKENS_THREADS", raising=False)
    assert usable_cores() == len(os.sched_getaffinity(0))
    code = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); from common.threads import usable_cores; print(usable_cores())"
    one_core = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert one_core.stdout.strip() == "1"


def test_override_and_bad_override(monkeypatch):
    monkeypatch.setenv("KEYTOKENS_THREADS", "3")
    assert usable_cores() == 3
    monkeypatch.setenv("KEYTOKENS_THREADS", "zero")
    assert usable_cores() == len(os.sched_getaffinity(0))


def test_openmp_waits_passively_in_every_stage_process():
    """Importing a stage package sets OMP_WAIT_POLICY before torch loads (the Makefile exports it too)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import pipeline, os; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**env, "PYTHONPATH": os.getcwd()})
    assert out.stdout.strip() == "PASSIVE"
