"""What every command shares: the one-line usage error and argument types."""
from __future__ import annotations

import argparse
import sys


def usage_error(message: str) -> int:
    """Print a one-line error (no traceback) and return the usage-error exit status 2."""
    print(f"error: {message}", file=sys.stderr)
    return 2


def positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value
