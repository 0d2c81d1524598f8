"""Conversions between ovsphere's PortSetting and vCenter's port policies.

Reading: :func:`setting_from_vim` turns a ``VMwareDVSPortSetting`` into a
:class:`~ovsphere.model.PortSetting`.  Writing: :func:`setting_to_vim` builds a
setting that carries only the fields the desired PortSetting sets (``None``
fields are left out, so vCenter keeps or inherits them), each marked
``inherited=False`` so the port overrides its port group.
"""

from __future__ import annotations

from typing import Any

from pyVmomi import vim

from ovsphere.model import PortSetting, Teaming, VlanMode, VlanRange

_V = vim.dvs.VmwareDistributedVirtualSwitch


def _bool(policy: Any) -> bool | None:
    value = getattr(policy, "value", None)
    return None if value is None else bool(value)


def setting_from_vim(setting: Any) -> PortSetting:
    if setting is None:
        return PortSetting()
    vlan = getattr(setting, "vlan", None)
    mode: VlanMode | None = None
    vlan_id: int | None = None
    trunk: tuple[VlanRange, ...] = ()
    if isinstance(vlan, _V.TrunkVlanSpec):
        mode = VlanMode.TRUNK
        trunk = tuple(sorted(VlanRange(int(r.start), int(r.end)) for r in vlan.vlanId or ()))
    elif isinstance(vlan, _V.PvlanSpec):
        mode = VlanMode.PVLAN
        vlan_id = int(vlan.pvlanId)
    elif isinstance(vlan, _V.VlanIdSpec):
        vlan_id = int(vlan.vlanId or 0)
        mode = VlanMode.ACCESS if vlan_id else VlanMode.NONE
    security = getattr(setting, "securityPolicy", None)
    return PortSetting(
        vlan_mode=mode,
        vlan_id=vlan_id,
        trunk=trunk,
        blocked=_bool(getattr(setting, "blocked", None)),
        promiscuous=_bool(getattr(security, "allowPromiscuous", None)),
        forged_transmits=_bool(getattr(security, "forgedTransmits", None)),
        mac_changes=_bool(getattr(security, "macChanges", None)),
    )


def teaming_from_vim(setting: Any) -> Teaming:
    order = getattr(getattr(setting, "uplinkTeamingPolicy", None), "uplinkPortOrder", None)
    return Teaming(
        active_uplinks=tuple(getattr(order, "activeUplinkPort", None) or ()),
        standby_uplinks=tuple(getattr(order, "standbyUplinkPort", None) or ()),
    )


def _policy(value: bool) -> Any:
    return vim.BoolPolicy(inherited=False, value=value)


def setting_to_vim(desired: PortSetting, *, teaming: Teaming | None = None) -> Any:
    """A VMwareDVSPortSetting carrying just what ``desired`` sets."""
    setting = _V.VmwarePortConfigPolicy()
    if desired.vlan_mode is VlanMode.TRUNK:
        setting.vlan = _V.TrunkVlanSpec(
            inherited=False,
            vlanId=[vim.NumericRange(start=r.start, end=r.end) for r in desired.trunk],
        )
    elif desired.vlan_mode in (VlanMode.ACCESS, VlanMode.NONE):
        setting.vlan = _V.VlanIdSpec(inherited=False, vlanId=desired.vlan_id or 0)
    elif desired.vlan_mode is VlanMode.PVLAN:
        setting.vlan = _V.PvlanSpec(inherited=False, pvlanId=desired.vlan_id or 0)
    if desired.blocked is not None:
        setting.blocked = _policy(desired.blocked)
    security = (desired.promiscuous, desired.forged_transmits, desired.mac_changes)
    if any(v is not None for v in security):
        sp = _V.SecurityPolicy(inherited=False)
        if desired.promiscuous is not None:
            sp.allowPromiscuous = _policy(desired.promiscuous)
        if desired.forged_transmits is not None:
            sp.forgedTransmits = _policy(desired.forged_transmits)
        if desired.mac_changes is not None:
            sp.macChanges = _policy(desired.mac_changes)
        setting.securityPolicy = sp
    if teaming is not None:
        setting.uplinkTeamingPolicy = _V.UplinkPortTeamingPolicy(
            inherited=False,
            uplinkPortOrder=_V.UplinkPortOrderPolicy(
                inherited=False,
                activeUplinkPort=list(teaming.active_uplinks),
                standbyUplinkPort=list(teaming.standby_uplinks),
            ),
        )
    return setting
