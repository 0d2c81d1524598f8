"""``ovsphere lab down``: remove everything a lab recorded, whatever state it is in.

Works after a clean ``up``, a failed one, or a crashed lab process: it reads
the lab's ``state.json``, ends every recorded process by PID (after checking
the PID still runs the program it recorded) and every process still inside a
lab namespace, deletes the namespaces (their veths go with them) and the
state directory.  Removing something already gone is not an error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import time

from ovsphere.lab import netlink
from ovsphere.lab.daemons import stop
from ovsphere.lab.state import LabState

log = logging.getLogger(__name__)


def down(state: LabState) -> list[str]:
    """Tear the lab down; return what was removed (for the operator)."""
    removed = []
    for proc in reversed(state.record.processes):
        stop(proc)
        removed.append(f"process {proc.name} ({proc.pid})")
    for ns in state.record.namespaces:
        # Whatever still runs inside a lab namespace was started in the lab
        # (by `lab exec`, a test, a daemon we lost track of): end it.
        for pid in netlink.pids_in(ns):
            _kill(pid)
            removed.append(f"process {pid} in {ns}")
    for ns in reversed(state.record.namespaces):
        if netlink.exists(ns):
            netlink.remove_netns(ns)
            removed.append(f"namespace {ns}")
    if state.dir.exists():
        shutil.rmtree(state.dir)
        removed.append(f"directory {state.dir}")
    return removed


def _kill(pid: int, timeout: float = 3) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
