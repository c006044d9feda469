"""What the benchmark scripts share: progress on the right stream, peak RSS, and each
measured path in a fresh subprocess (so that peak RSS is that path's own).

A script runs itself with `--child PATH --spec FILE`; the child calls `become_child()`,
does its work and `emit`s one `RESULT {json}` line on stdout, where its progress must not
go.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

_CHILD = False  # in a measuring subprocess, progress goes to stderr: stdout has the result


def say(message: str) -> None:
    print(message, file=sys.stderr if _CHILD else sys.stdout, flush=True)


def rss_mb() -> float:
    """Peak RSS of this process so far, in MB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def become_child() -> None:
    global _CHILD
    _CHILD = True


def emit(result: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(result), flush=True)


def run_child(script: str, path: str, spec_file: Path) -> dict[str, Any]:
    """Run `script --child path --spec spec_file` and return what it emitted."""
    out = subprocess.run(
        [sys.executable, script, "--child", path, "--spec", str(spec_file)],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    ).stdout
    return json.loads(next(x for x in out.splitlines() if x.startswith("RESULT "))[7:])
