"""Waiting for vCenter tasks, and surfacing their faults.

Tasks are watched through a PropertyCollector of their own (one filter over
all of them, ``WaitForUpdatesEx``) rather than polled one by one: a batch of
port reconfigurations is dozens of tasks, and vCenter pushes their end.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pyVmomi import vim, vmodl

from ovsphere.errors import OvsphereError, VCenterError, VCenterTemporaryError
from ovsphere.vsphere.faults import translate

_DONE = ("success", "error")


def wait_for_tasks(si: Any, tasks: Sequence[Any], action: str, timeout: float = 300) -> list[Any]:
    """Wait until every task ends; return their results in order.

    If any task failed, raise the translated fault of the first failure after
    *all* have ended, so the caller never proceeds while some still run.
    """
    if not tasks:
        return []
    pc = si.content.propertyCollector.CreatePropertyCollector()
    try:
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=t) for t in tasks],
            propSet=[
                vmodl.query.PropertyCollector.PropertySpec(
                    type=vim.Task, pathSet=["info.state", "info.error", "info.result"]
                )
            ],
        )
        pc.CreateFilter(spec, partialUpdates=False)
        state: dict[str, dict[str, Any]] = {t._moId: {} for t in tasks}
        version = ""
        deadline = time.monotonic() + timeout
        while any(s.get("info.state") not in _DONE for s in state.values()):
            left = deadline - time.monotonic()
            if left <= 0:
                raise VCenterTemporaryError(
                    f"{action}: vCenter tasks did not finish within {timeout:.0f} s",
                    fix="look at the tasks in vCenter; they may still complete",
                )
            options = vmodl.query.PropertyCollector.WaitOptions(maxWaitSeconds=max(1, int(left)))
            update = pc.WaitForUpdatesEx(version, options)
            if update is None:
                continue
            version = update.version
            for fs in update.filterSet:
                for obj in fs.objectSet:
                    for change in obj.changeSet:
                        state[obj.obj._moId][change.name] = change.val
    finally:
        pc.Destroy()

    for t in tasks:
        if state[t._moId].get("info.state") == "error":
            err = state[t._moId].get("info.error")
            # pyVmomi hands a LocalizedMethodFault over as the MethodFault itself.
            fault: BaseException = (
                err
                if isinstance(err, BaseException)
                else getattr(err, "fault", None)
                or VCenterError(f"{action}: a task failed without saying why")
            )
            failed = sum(1 for s in state.values() if s.get("info.state") == "error")
            raise _with_count(translate(fault, action), failed, len(tasks))
    return [state[t._moId].get("info.result") for t in tasks]


def _with_count(error: OvsphereError, failed: int, total: int) -> OvsphereError:
    if total > 1:
        error.message = f"{error.message} [{failed} of {total} tasks failed]"
        error.args = (str(error.message) + (f" ({error.fix})" if error.fix else ""),)
    return error
