from dataclasses import replace

import pytest

from ovsphere.model import NicBacking, PowerState
from ovsphere.testing.builders import nic, vm
from ovsphere.vsphere.watch import (
    HostChanged,
    NicAdded,
    NicRebacked,
    NicRemoved,
    PowerChanged,
    VmAdded,
    VmChanged,
    VmRemoved,
    diff_vm,
)

pytestmark = pytest.mark.unit


def test_diff_names_each_kind_of_change():
    a = vm("vm-1", "a", "host-1", nic(4000, "1"), nic(4001, "2"))
    assert diff_vm(None, a) == [VmAdded(a)]
    assert diff_vm(a, None) == [VmRemoved(a)]
    assert diff_vm(a, a) == []
    moved = replace(a, host="host-2", power_state=PowerState.OFF)
    assert diff_vm(a, moved) == [
        HostChanged(moved, "host-1", "host-2"),
        PowerChanged(moved, PowerState.ON, PowerState.OFF),
    ]
    rebacked_nic = replace(a.nics[1], backing=NicBacking("network", network="VM Network"))
    changed = replace(a, nics=(rebacked_nic, nic(4002, "3")), name="b")
    assert diff_vm(a, changed) == [
        NicAdded(changed, changed.nics[1]),
        NicRemoved(changed, a.nics[0]),
        NicRebacked(changed, a.nics[1], rebacked_nic),
        VmChanged(changed),
    ]
