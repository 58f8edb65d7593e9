"""Injected faults, for the crash-recovery tests: stop the process at a named point.

`CRIME_PIPELINE_FAULT="<pattern>[=kill|enospc|erofs]"` (several separated by `;`) makes
`fault_point(name)` act when `name` matches the glob pattern: `kill` sends SIGKILL to this process
(a crash with no clean-up at all), `enospc` and `erofs` raise the OSError a full disk or a read-only
file system would. Unset (always, outside tests), `fault_point` does nothing.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import signal

FAULT_ENV = "CRIME_PIPELINE_FAULT"
_ERRORS = {"enospc": (errno.ENOSPC, "No space left on device"), "erofs": (errno.EROFS, "Read-only file system")}


def fault_point(name: str) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    for item in spec.split(";"):
        pattern, _, kind = item.strip().partition("=")
        if not pattern or not fnmatch.fnmatchcase(name, pattern):
            continue
        kind = kind or "kill"
        if kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if kind in _ERRORS:
            code, message = _ERRORS[kind]
            raise OSError(code, f"{message} (injected at {name})")
        raise ValueError(f"{FAULT_ENV}: unknown fault kind {kind!r} (kill, enospc or erofs)")
