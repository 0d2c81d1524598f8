"""OpenFlow rules that make an OVS bridge behave like an ESX host's vDS proxy switch.

Pure: from each dvPort's effective setting (as vCenter reports it) and the
port group's teaming, it derives the flows of one host's proxy switch, so a
wrong vSphere setting breaks traffic in the lab as it would on ESX:

- an access (VST) port tags what it receives from its VM with its VLAN and
  delivers only that VLAN, untagged; a frame the guest already tagged is
  dropped;
- a trunk (VGT) port carries its VLAN ranges tagged (VLAN 0: untagged);
- a blocked port, or one without a VLAN, passes nothing either way;
- a port that is not promiscuous receives only frames for its own MAC,
  broadcast and multicast (a vDS knows its vNICs' MACs, it does not learn);
- with forged transmits rejected, a frame whose source MAC is not the vNIC's
  is dropped;
- an uplink gets only frames from ports whose port group teams it (and none
  destined to a local vNIC): a port group without uplinks leaves the host
  nowhere.

Flows are OpenFlow 1.3 (``ovs-ofctl -O OpenFlow13``).  Pipeline: table 0
admits a frame from its port and tags it (every frame is tagged inside the
bridge, VLAN 0 standing for untagged); then one table per
egress port decides whether that port gets a copy, and resubmits to the next.
Register 0 carries, as a bit mask, the uplinks the ingress port may use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ovsphere.model import PortSetting, VlanMode, VlanRange

MULTICAST = "01:00:00:00:00:00/01:00:00:00:00:00"
FIRST_EGRESS_TABLE = 1
MAX_PORTS = 250  # one OpenFlow table per egress port; OVS has 255


@dataclass(frozen=True)
class ProxyPort:
    """A vNIC's dvPort on this host."""

    ofport: int
    key: str
    mac: str
    setting: PortSetting
    uplinks: tuple[str, ...] = ()  # its port group's active + standby uplinks


@dataclass(frozen=True)
class Uplink:
    ofport: int
    name: str  # the vDS uplink name, e.g. "uplink1"


def vlan_prefixes(start: int, end: int) -> list[tuple[int, int]]:
    """Cover VIDs ``start..end`` with (value, mask) pairs over the 12 VID bits."""
    out = []
    while start <= end:
        size = start & -start if start else 1 << 12
        while size > end - start + 1:
            size >>= 1
        out.append((start, 0xFFF & ~(size - 1)))
        start += size
    return out


def _push(vid: int) -> str:
    # OpenFlow 1.3: push a tag, then set its VID (with the "present" bit 0x1000).
    return f"push_vlan:0x8100,set_field:{0x1000 | vid}->vlan_vid"


def _tci(value: int, mask: int) -> str:
    return f"vlan_tci=0x{0x1000 | value:04x}/0x{0x1000 | mask:04x}"


def _passes(s: PortSetting) -> bool:
    if s.blocked is not False:  # unknown counts as blocked: fail closed
        return False
    if s.vlan_mode is VlanMode.ACCESS:
        return bool(s.vlan_id)
    return s.vlan_mode is VlanMode.TRUNK and bool(s.trunk)


def _trunk_ranges(s: PortSetting) -> list[VlanRange]:
    return [VlanRange(max(r.start, 0), min(r.end, 4094)) for r in s.trunk]


def _uplink_bits(port: ProxyPort, uplinks: Sequence[Uplink]) -> int:
    return sum(1 << i for i, u in enumerate(uplinks) if u.name in port.uplinks)


def ingress_flows(port: ProxyPort, uplinks: Sequence[Uplink]) -> list[str]:
    s = port.setting
    if not _passes(s):
        return []
    src = "" if s.forged_transmits is True else f",dl_src={port.mac}"
    then = f"load:{_uplink_bits(port, uplinks)}->NXM_NX_REG0[],resubmit(,{FIRST_EGRESS_TABLE})"
    match = f"table=0,priority=100,in_port={port.ofport}"
    if s.vlan_mode is VlanMode.ACCESS:
        return [f"{match},vlan_tci=0x0000/0x1fff{src},actions={_push(s.vlan_id or 0)},{then}"]
    flows = []
    for r in _trunk_ranges(s):
        if r.start == 0:
            flows.append(f"{match},vlan_tci=0x0000/0x1fff{src},actions={_push(0)},{then}")
        for value, mask in vlan_prefixes(r.start, r.end):
            flows.append(f"{match},{_tci(value, mask)}{src},actions={then}")
    return flows


def _deliver(vid_untagged: int | None, ofport: int, next_table: int | None) -> str:
    """Output a copy (untagged if the port wants it so), then go on."""
    then = f",resubmit(,{next_table})" if next_table is not None else ""
    if vid_untagged is None:
        return f"output:{ofport}{then}"
    if next_table is None:
        return f"pop_vlan,output:{ofport}"
    return f"pop_vlan,output:{ofport},{_push(vid_untagged)}{then}"


def _default(table: int, next_table: int | None) -> str:
    return f"table={table},priority=0,actions=" + (
        f"resubmit(,{next_table})" if next_table is not None else "drop"
    )


def egress_flows(table: int, port: ProxyPort, next_table: int | None) -> list[str]:
    nxt = next_table
    flows = [_default(table, nxt)]
    s = port.setting
    if not _passes(s):
        return flows
    dsts = [""] if s.promiscuous is True else [f",dl_dst={port.mac}", f",dl_dst={MULTICAST}"]
    if s.vlan_mode is VlanMode.ACCESS:
        for d in dsts:
            flows.append(
                f"table={table},priority=20,dl_vlan={s.vlan_id}{d},"
                f"actions={_deliver(s.vlan_id, port.ofport, nxt)}"
            )
        return flows
    for r in _trunk_ranges(s):
        for d in dsts:
            if r.start == 0:
                flows.append(
                    f"table={table},priority=30,dl_vlan=0{d},"
                    f"actions={_deliver(0, port.ofport, nxt)}"
                )
            for value, mask in vlan_prefixes(max(r.start, 1), r.end) if r.end >= 1 else []:
                flows.append(
                    f"table={table},priority=20,{_tci(value, mask)}{d},"
                    f"actions={_deliver(None, port.ofport, nxt)}"
                )
    return flows


def uplink_flows(
    table: int, bit: int, uplink: Uplink, next_table: int | None, local_macs: Sequence[str]
) -> list[str]:
    nxt = next_table
    flows = [_default(table, nxt)]
    for mac in local_macs:  # a vDS keeps frames for its own vNICs on the host
        flows.append(_default(table, nxt).replace("priority=0", f"priority=30,dl_dst={mac}"))
    flows.append(
        f"table={table},priority=25,dl_vlan=0,reg0={1 << bit}/{1 << bit},"
        f"actions={_deliver(0, uplink.ofport, nxt)}"
    )
    flows.append(
        f"table={table},priority=20,reg0={1 << bit}/{1 << bit},"
        f"actions={_deliver(None, uplink.ofport, nxt)}"
    )
    return flows


def proxy_switch_flows(ports: Sequence[ProxyPort], uplinks: Sequence[Uplink] = ()) -> list[str]:
    """Every flow of one host's proxy switch (for ``ovs-ofctl replace-flows``)."""
    if len(ports) + len(uplinks) > MAX_PORTS:
        raise ValueError(
            f"{len(ports)} ports on one proxy switch; the lab emulates at most {MAX_PORTS}"
        )
    ports = sorted(ports, key=lambda p: p.ofport)
    local = [p.mac for p in ports]
    flows = ["table=0,priority=0,actions=drop"]
    for p in ports:
        flows += ingress_flows(p, uplinks)
    stages = len(ports) + len(uplinks)
    for i, p in enumerate(ports):
        table = FIRST_EGRESS_TABLE + i
        nxt = table + 1 if i + 1 < stages else None
        flows += egress_flows(table, p, nxt)
    for j, u in enumerate(uplinks):
        table = FIRST_EGRESS_TABLE + len(ports) + j
        nxt = table + 1 if len(ports) + j + 1 < stages else None
        flows += uplink_flows(table, j, u, nxt, local)
    return flows
