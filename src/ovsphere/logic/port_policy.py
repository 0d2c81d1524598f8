"""What each kind of port on the isolated port group must look like.

The trick needs exactly three port shapes (see ARCHITECTURE.md):

- an OVS VM's trunk port: VLAN trunk (VGT) over the configured ranges,
  promiscuous, forged transmits and MAC changes accepted, unblocked;
- a VM's port: its own access VLAN (VST), security all rejected, unblocked;
- any other port (free, or a VM NIC still waiting for its VLAN): blocked, so a
  frame never leaves it untagged into the OVS VM's native VLAN.
"""

from __future__ import annotations

from collections.abc import Sequence

from ovsphere.model import Port, PortEdit, PortSetting, Teaming, VlanMode, VlanRange


def trunk_port(ranges: Sequence[VlanRange]) -> PortSetting:
    return PortSetting(
        vlan_mode=VlanMode.TRUNK,
        trunk=tuple(sorted(ranges)),
        blocked=False,
        promiscuous=True,
        forged_transmits=True,
        mac_changes=True,
    )


def vm_port(vlan: int) -> PortSetting:
    return PortSetting(
        vlan_mode=VlanMode.ACCESS,
        vlan_id=vlan,
        blocked=False,
        promiscuous=False,
        forged_transmits=False,
        mac_changes=False,
    )


def held_port() -> PortSetting:
    """A port that must pass nothing: its VLAN is left as it is."""
    return PortSetting(blocked=True, promiscuous=False, forged_transmits=False, mac_changes=False)


#: the isolated port group's default port: blocked, untagged, everything rejected
PORTGROUP_DEFAULT = PortSetting(
    vlan_mode=VlanMode.NONE,
    vlan_id=0,
    blocked=True,
    promiscuous=False,
    forged_transmits=False,
    mac_changes=False,
)

NO_UPLINKS = Teaming()


def differences(current: PortSetting, desired: PortSetting) -> list[str]:
    """Human-readable fields where ``current`` differs from what ``desired`` sets."""
    out = []
    if desired.vlan_mode is not None:
        if desired.vlan_mode is VlanMode.TRUNK:
            if current.vlan_mode is not VlanMode.TRUNK or current.trunk != desired.trunk:
                want = ",".join(map(str, desired.trunk))
                out.append(f"VLAN {describe_vlan(current)} -> trunk {want}")
        elif (current.vlan_mode, current.vlan_id or 0) != (desired.vlan_mode, desired.vlan_id or 0):
            out.append(f"VLAN {describe_vlan(current)} -> {describe_vlan(desired)}")
    for name in ("blocked", "promiscuous", "forged_transmits", "mac_changes"):
        want = getattr(desired, name)
        if want is not None and getattr(current, name) != want:
            out.append(f"{name.replace('_', ' ')} {getattr(current, name)} -> {want}")
    return out


def edit_for(port: Port, desired: PortSetting, why: str) -> PortEdit | None:
    """The edit that gives ``port`` the ``desired`` shape, or None if it has it already."""
    changed = differences(port.setting, desired)
    if not changed:
        return None
    return PortEdit(
        key=port.key,
        setting=desired,
        config_version=port.config_version or None,
        reason=f"{why}: {'; '.join(changed)}",
    )


def describe_vlan(s: PortSetting) -> str:
    if s.vlan_mode is VlanMode.TRUNK:
        return "trunk " + ",".join(map(str, s.trunk))
    if s.vlan_mode is VlanMode.ACCESS:
        return str(s.vlan_id)
    if s.vlan_mode is VlanMode.PVLAN:
        return f"pvlan {s.vlan_id}"
    if s.vlan_mode is VlanMode.NONE:
        return "none"
    return "unknown"


def vlan_count(ranges: Sequence[VlanRange]) -> int:
    """How many VM VLANs (1..4094) the ranges hold; overlapping ranges count once."""
    ids: set[int] = set()
    for r in ranges:
        ids.update(range(max(r.start, 1), min(r.end, 4094) + 1))
    return len(ids)


def in_ranges(vlan: int, ranges: Sequence[VlanRange]) -> bool:
    return any(r.start <= vlan <= r.end for r in ranges)
