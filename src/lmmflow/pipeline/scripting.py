"""Helpers for the thin Snakemake scripts in scripts/."""

import sys


def send_stderr_to_log(log_path: str) -> None:
    """Send the script's stderr (messages, tracebacks) to the rule's log file.

    An uncaught error's one-line message also goes to the terminal: Snakemake itself only says
    "check log file(s)", and the reason (a digest mismatch, a missing column) belongs on screen.
    """
    terminal = sys.stderr
    sys.stderr = open(log_path, "w", buffering=1)

    def report(kind, error, traceback):
        sys.__excepthook__(kind, error, traceback)
        print(f"{kind.__name__}: {error}", file=terminal)

    sys.excepthook = report
