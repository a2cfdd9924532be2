"""One exception type for bad input, in a leaf module that both `encoders/` and `pipeline/` import.

Code raises `InputError` with a message that names the offending input and the fix; the CLIs (plumbing/cli.py)
turn it into `error: <message>` on stderr and exit status 2, instead of a bare stack trace.
"""
from __future__ import annotations


class InputError(Exception):
    """Bad input from the user (file, parameter, dataset): the message is shown as is, on one line."""
