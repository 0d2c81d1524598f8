"""The preflight: every vSphere setting the trick depends on, judged.

Each check yields PASS, WARN or FAIL with the objects at fault and what to
fix.  FAIL means traffic leaks, loops or breaks; WARN means it works now but
an operator should look.  ``ovsphere check`` prints them and exits 1 on any
FAIL.  Pure: all inputs come from one snapshot read by the vSphere layer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from ovsphere.logic.plan import vm_vlan_counts
from ovsphere.logic.port_policy import describe_vlan, in_ranges, vlan_count
from ovsphere.model import (
    Binding,
    Inventory,
    OvsVm,
    Port,
    Portgroup,
    PowerState,
    Switch,
    VlanMode,
    VlanRange,
)

SPARE_WARN_FRACTION = 0.10


class Status(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class CheckInput:
    inventory: Inventory
    switch_name: str
    portgroup_name: str
    ports: Sequence[Port]  # the isolated port group's ports
    ovs_vms: Sequence[OvsVm]
    trunk: Sequence[VlanRange]


def _ok(name: str, detail: str) -> Check:
    return Check(name, Status.PASS, detail)


def run_checks(data: CheckInput) -> list[Check]:
    inv = data.inventory
    switch = inv.switch_named(data.switch_name)
    if switch is None:
        names = ", ".join(s.name for s in inv.switches) or "none"
        return [
            Check(
                "switch",
                Status.FAIL,
                f"no vDS named {data.switch_name!r} (have: {names})",
                "pass --dvs with one of them",
            )
        ]
    pg = inv.portgroup_named(switch, data.portgroup_name)
    results = [_ok("switch", f"vDS {switch.name} ({len(switch.member_hosts)} member hosts)")]
    if pg is None:
        results.append(
            Check(
                "portgroup",
                Status.FAIL,
                f"no port group {data.portgroup_name!r} on {switch.name}",
                "run `ovsphere prepare`",
            )
        )
        return results
    results.append(_ok("portgroup", f"{pg.name} ({pg.key}) on {switch.name}"))
    results += _portgroup_checks(pg)
    results += _ovs_vm_checks(inv, switch, data)
    results += _vm_port_checks(data, pg)
    return results


def _portgroup_checks(pg: Portgroup) -> list[Check]:
    out = []
    if pg.uplink:
        out.append(
            Check(
                "uplinks",
                Status.FAIL,
                f"{pg.name} is the switch's uplink port group",
                "use a VM port group; run `ovsphere prepare --portgroup NAME`",
            )
        )
    elif pg.teaming.uplinks:
        out.append(
            Check(
                "uplinks",
                Status.FAIL,
                f"{pg.name} teams uplinks {', '.join(pg.teaming.uplinks)}: VM frames can leave the "
                "host untouched by OVS (a loop and leak risk)",
                "move every uplink to 'unused' in the port group's teaming, "
                "or run `ovsphere prepare --remove-uplinks`",
            )
        )
    else:
        out.append(_ok("uplinks", "no active or standby uplink"))
    if pg.binding is Binding.STATIC:
        out.append(_ok("binding", "static"))
    else:
        out.append(
            Check(
                "binding",
                Status.FAIL,
                f"port binding is {pg.binding.value or 'unset'}: per-port VLANs need "
                "static binding",
                "run `ovsphere prepare`",
            )
        )
    missing = [
        n
        for n, ok in (
            ("VLAN", pg.overrides.vlan),
            ("security", pg.overrides.security),
            ("block", pg.overrides.block),
        )
        if not ok
    ]
    if missing:
        out.append(
            Check(
                "overrides",
                Status.FAIL,
                f"port group does not allow per-port {', '.join(missing)} override",
                "run `ovsphere prepare`",
            )
        )
    else:
        out.append(_ok("overrides", "VLAN, security and block overrides allowed"))
    if pg.reset_at_disconnect:
        out.append(
            Check(
                "reset-at-disconnect",
                Status.WARN,
                "vCenter resets a port's VLAN when its VM disconnects",
                "run `ovsphere prepare`",
            )
        )
    if pg.default.blocked is not True:
        out.append(
            Check(
                "default-blocked",
                Status.WARN,
                "ports are not blocked by default: a new NIC sends untagged frames to "
                "the OVS VM before it has a VLAN",
                "run `ovsphere prepare`",
            )
        )
    return out


def _ovs_vm_checks(inv: Inventory, switch: Switch, data: CheckInput) -> list[Check]:
    out = []
    by_host: dict[str | None, list[OvsVm]] = defaultdict(list)
    for o in data.ovs_vms:
        by_host[o.host].append(o)
    bad_hosts = []
    for host_id in switch.member_hosts:
        host = inv.host(host_id)
        name = host.name if host else host_id
        found = by_host.get(host_id, [])
        if len(found) != 1:
            listed = ", ".join(o.name for o in found) or "none"
            bad_hosts.append(f"{name}: {len(found)} OVS VMs ({listed})")
        elif found[0].power_state is not PowerState.ON:
            bad_hosts.append(f"{name}: OVS VM {found[0].name} is {found[0].power_state.value}")
        elif not found[0].trunk_nics:
            bad_hosts.append(f"{name}: OVS VM {found[0].name} has no vNIC on {data.portgroup_name}")
    if bad_hosts:
        out.append(
            Check(
                "ovs-vm-per-host",
                Status.FAIL,
                "; ".join(bad_hosts),
                "deploy exactly one powered-on OVS VM per member host with a vNIC on the "
                "isolated port group",
            )
        )
    else:
        out.append(
            _ok(
                "ovs-vm-per-host",
                f"one powered-on OVS VM on each of {len(switch.member_hosts)} hosts",
            )
        )
    strays = [o.name for o in data.ovs_vms if o.host not in switch.member_hosts and o.trunk_nics]
    if strays:
        out.append(
            Check(
                "ovs-vm-host",
                Status.WARN,
                f"OVS VMs on hosts outside {switch.name}: {', '.join(strays)}",
                "add the host to the vDS or remove the OVS VM",
            )
        )

    ports = {p.key: p for p in data.ports}
    wrong = []
    for o in data.ovs_vms:
        for nic in o.trunk_nics:
            port = ports.get(nic.backing.port_key or "")
            if port is None:
                wrong.append(f"{o.name} {nic.label}: no port bound")
                continue
            s = port.setting
            faults = []
            if s.vlan_mode is not VlanMode.TRUNK:
                faults.append(f"VLAN {describe_vlan(s)} (not a trunk)")
            elif not all(
                any(t.start <= r.start and r.end <= t.end for t in s.trunk) for r in data.trunk
            ):
                faults.append(
                    f"trunk {describe_vlan(s)} misses part of " + ",".join(map(str, data.trunk))
                )
            if s.promiscuous is not True:
                faults.append("promiscuous rejected")
            if s.forged_transmits is not True:
                faults.append("forged transmits rejected")
            if s.blocked:
                faults.append("blocked")
            if faults:
                wrong.append(f"{o.name} {nic.label} (port {port.key}): {', '.join(faults)}")
    if wrong:
        out.append(Check("ovs-vm-ports", Status.FAIL, "; ".join(wrong), "run `ovsphere prepare`"))
    elif any(o.trunk_nics for o in data.ovs_vms):
        out.append(
            _ok("ovs-vm-ports", "every OVS VM port is a promiscuous trunk with forged transmits")
        )
    mac = [
        o.name
        for o in data.ovs_vms
        for n in o.trunk_nics
        if (p := ports.get(n.backing.port_key or "")) and p.setting.mac_changes is False
    ]
    if mac:
        out.append(
            Check(
                "ovs-vm-mac-changes",
                Status.WARN,
                f"MAC changes rejected on {', '.join(mac)}",
                "run `ovsphere prepare`",
            )
        )
    return out


def _vm_port_checks(data: CheckInput, pg: Portgroup) -> list[Check]:
    out = []
    ovs_ports = {n.backing.port_key for o in data.ovs_vms for n in o.trunk_nics}
    vm_ports = [p for p in data.ports if p.key not in ovs_ports and p.connectee is not None]
    counts = vm_vlan_counts(data.ports, {k for k in ovs_ports if k})
    dups = sorted(v for v, c in counts.items() if c > 1)
    if dups:
        detail = ", ".join(
            f"VLAN {v} on ports "
            + ",".join(
                sorted(
                    p.key
                    for p in vm_ports
                    if p.setting.vlan_id == v and p.setting.vlan_mode is VlanMode.ACCESS
                )
            )
            for v in dups[:10]
        )
        out.append(
            Check(
                "vlan-unique",
                Status.FAIL,
                f"{len(dups)} VLANs used by more than one VM port: {detail}",
                "give each VM port its own VLAN (the manager does), or block the duplicates",
            )
        )
    else:
        out.append(_ok("vlan-unique", f"{sum(counts.values())} VM ports, each on its own VLAN"))
    untagged = [
        p.key
        for p in vm_ports
        if not p.setting.blocked and p.setting.vlan_mode is not VlanMode.ACCESS
    ]
    if untagged:
        out.append(
            Check(
                "vlan-missing",
                Status.FAIL,
                f"VM ports unblocked without a VLAN: {', '.join(untagged[:20])}",
                "block them or give them a VLAN; `ovsphere prepare` blocks them",
            )
        )
    else:
        out.append(_ok("vlan-missing", "no VM port passes traffic without a VLAN"))
    outside = [
        f"{p.key} (VLAN {p.setting.vlan_id})"
        for p in vm_ports
        if p.setting.vlan_mode is VlanMode.ACCESS
        and p.setting.vlan_id
        and not in_ranges(p.setting.vlan_id, data.trunk)
    ]
    if outside:
        out.append(
            Check(
                "vlan-in-trunk",
                Status.FAIL,
                f"VM ports on VLANs the OVS VM trunks do not carry: {', '.join(outside)}",
                "widen the trunk ranges (--trunk) or move those VMs to other VLANs",
            )
        )
    capacity = vlan_count(data.trunk)
    spare = capacity - len(counts)
    if capacity == 0 or spare < SPARE_WARN_FRACTION * capacity:
        out.append(
            Check(
                "vlan-spare",
                Status.WARN,
                f"{spare} of {capacity} VLANs left on this vDS",
                "plan another vDS (one more trunk vNIC per OVS VM) for more VM NICs",
            )
        )
    else:
        out.append(_ok("vlan-spare", f"{spare} of {capacity} VLANs left"))
    return out


def failed(checks: Sequence[Check]) -> bool:
    return any(c.status is Status.FAIL for c in checks)
