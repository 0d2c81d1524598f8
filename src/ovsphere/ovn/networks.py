"""Networks: one OVN logical switch each, with native DHCP when it has a CIDR.

A network ``web`` is the logical switch ``web`` (external_ids mark it as
ovsphere's); ``--cidr`` adds OVN IPAM (``other_config:subnet``) and a
DHCP_Options row whose MTU fits the tunnel; ``--transport vlan:PHYSNET:ID``
adds a localnet port so the network leaves the OVS VMs on VLAN ID of the
physical network PHYSNET instead of through tunnels.  A name taken by a
logical switch ovsphere does not own is refused, never adopted.
"""

from __future__ import annotations

import hashlib
import ipaddress
from typing import Any

from ovsphere.errors import ConflictError, NotFoundError, PreconditionError
from ovsphere.model import Network
from ovsphere.ovn import owners
from ovsphere.ovn.connection import NbClient

#: guest MTU offered by DHCP: a tunnel's overhead must fit in the transport MTU
GUEST_MTU = 1500
OVERHEAD = {"geneve": 58, "vxlan": 50}


def dhcp_mtu(transport: str, transport_mtu: int) -> int:
    overhead = OVERHEAD.get(transport, 0)
    return min(GUEST_MTU, transport_mtu - overhead)


def server_mac(name: str) -> str:
    digest = hashlib.sha256(name.encode()).digest()
    return "0a:" + ":".join(f"{b:02x}" for b in digest[:5])


def _switches(client: NbClient) -> dict[str, Any]:
    return {r.name: r for r in client.api.tables["Logical_Switch"].rows.values()}


def read_networks(client: NbClient) -> list[Network]:
    out = []
    dhcp = {
        r.external_ids.get(owners.NETWORK): str(r.uuid)
        for r in client.api.tables["DHCP_Options"].rows.values()
        if owners.owned(r.external_ids)
    }
    for name, row in sorted(_switches(client).items()):
        ids = dict(row.external_ids)
        if not owners.owned(ids):
            continue
        out.append(
            Network(
                name=name,
                cidr=ids.get(owners.CIDR) or None,
                vni=int(ids[owners.VNI]) if ids.get(owners.VNI) else None,
                transport=ids.get(owners.TRANSPORT, "geneve"),
                uuid=str(row.uuid),
                dhcp=dhcp.get(name),
                deleting=ids.get(owners.DELETE) == "true",
            )
        )
    return out


def create_network(client: NbClient, net: Network, *, transport_mtu: int = 1600) -> Network:
    """Create the network (idempotent when it exists with the same settings)."""
    existing = _switches(client).get(net.name)
    if existing is not None:
        if not owners.owned(dict(existing.external_ids)):
            raise ConflictError(
                f"OVN already has a logical switch named {net.name!r} that ovsphere does not own",
                fix="choose another network name; ovsphere never adopts others' switches",
            )
        have = next(n for n in read_networks(client) if n.name == net.name)
        if (have.cidr, have.vni, have.transport) != (net.cidr, net.vni, net.transport):
            raise ConflictError(
                f"network {net.name} exists with other settings (cidr {have.cidr}, vni "
                f"{have.vni}, transport {have.transport})",
                fix="delete it first, or create it with the same settings",
            )
        return have
    ids = owners.mark(**{owners.NETWORK: net.name, owners.TRANSPORT: net.transport})
    other: dict[str, str] = {}
    if net.vni is not None:
        ids[owners.VNI] = str(net.vni)
        other["requested-tnl-key"] = str(net.vni)
    if net.cidr:
        ids[owners.CIDR] = net.cidr
        cidr = ipaddress.ip_network(net.cidr)
        server = next(cidr.hosts())
        other["subnet"] = str(cidr)
        other["exclude_ips"] = str(server)
    api = client.api
    with client.transaction(f"create network {net.name}") as txn:
        txn.add(api.ls_add(net.name, may_exist=False, external_ids=ids, other_config=other))
        if net.cidr:
            dhcp = txn.add(api.dhcp_options_add(net.cidr, **ids))
            txn.add(
                api.dhcp_options_set_options(
                    dhcp,
                    lease_time="3600",
                    server_id=str(server),
                    server_mac=server_mac(net.name),
                    mtu=str(dhcp_mtu(net.transport, transport_mtu)),
                )
            )
        physnet = net.physnet
        if physnet is not None:
            ln = f"ln-{net.name}"
            txn.add(
                api.lsp_add(
                    net.name,
                    ln,
                    type="localnet",
                    addresses=["unknown"],
                    options={"network_name": physnet[0]},
                    external_ids=owners.mark(**{owners.LOCALNET: net.name}),
                )
            )
            # ovsdbapp's tag argument is for nested ports; a localnet port's VLAN is a column.
            txn.add(api.db_set("Logical_Switch_Port", ln, ("tag", physnet[1])))
    return next(n for n in read_networks(client) if n.name == net.name)


def attached_ports(client: NbClient, name: str) -> list[str]:
    row = _switches(client).get(name)
    if row is None:
        return []
    return sorted(p.name for p in row.ports if owners.LOCALNET not in p.external_ids)


def delete_network(client: NbClient, name: str, *, force: bool = False) -> list[str]:
    """Delete the network now, or (``force``, ports attached) mark it for the manager.

    A port's VLAN may be deleted only once no dvPort passes it any more, which
    is the manager's job (it blocks the dvPorts, then releases the ports), so a
    forced delete of a network with ports marks it (``ovsphere:delete``) and
    returns the ports the manager will release before it deletes the switch.
    """
    row = _switches(client).get(name)
    if row is None or not owners.owned(dict(row.external_ids)):
        raise NotFoundError(f"ovsphere has no network {name!r}", fix="see `ovsphere network list`")
    ports = attached_ports(client, name)
    if ports and not force:
        raise PreconditionError(
            f"network {name} still has {len(ports)} ports attached ({', '.join(ports[:5])})",
            fix="detach them first, or pass --force to have the manager release them and "
            "delete the network",
        )
    api = client.api
    if ports:
        with client.transaction(f"mark network {name} for deletion") as txn:
            txn.add(api.db_set("Logical_Switch", name, ("external_ids", {owners.DELETE: "true"})))
        return ports
    with client.transaction(f"delete network {name}") as txn:
        txn.add(api.ls_del(name, if_exists=True))
        for r in client.api.tables["DHCP_Options"].rows.values():
            if owners.owned(dict(r.external_ids)) and r.external_ids.get(owners.NETWORK) == name:
                txn.add(api.dhcp_options_del(r.uuid))
    return []
