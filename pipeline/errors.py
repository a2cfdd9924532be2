"""One exception type for bad input, so every CLI can print one clear line and exit non-zero.

Stages raise `InputError` with a message that names the offending input and the fix; `cli_main` turns it into
`error: <message>` on stderr and exit status 2, instead of a bare stack trace.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable


class InputError(Exception):
    """Bad input from the user (file, parameter, dataset): the message is shown as is, on one line."""


def cli_main(main: Callable[[list[str] | None], int | None]) -> None:
    """Run a stage's `main(argv)`, turning InputError (and Ctrl-C) into one line and an exit status."""
    try:
        code = main(None)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: completed shards are kept; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)


def stage_parser(module: str, doc: str | None, *groups: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    """A stage CLI's parser: `python -m <module>`, the module docstring as help, then the shared option groups."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for add in groups:
        add(parser)
    return parser
