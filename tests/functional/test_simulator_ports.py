"""Distributed ports in the extended simulator: port groups, FetchDVPorts, ReconfigureDVPort_Task.

Each test reads back through pyVmomi what it changed, as ovsphere does on vCenter.
"""

import pytest
from pyVmomi import vim, vmodl

from ovsphere.testing.vcsim import connect, events, failure, inventory, wait

pytestmark = pytest.mark.functional

VMW = vim.dvs.VmwareDistributedVirtualSwitch


def dvswitch(si):
    (dvs,) = inventory(si, vim.DistributedVirtualSwitch)
    return dvs


def add_portgroup(dvs, name, num_ports, *, policy=None, setting=None, auto_expand=None):
    spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(name=name, numPorts=num_ports)
    if policy is not None:
        spec.policy = policy
    if setting is not None:
        spec.defaultPortConfig = setting
    if auto_expand is not None:
        spec.autoExpand = auto_expand
    wait(dvs.AddDVPortgroup_Task([spec]))
    (pg,) = [pg for pg in dvs.portgroup if pg.name == name]
    return pg


def override_policy(vlan=True, security=True, block=True):
    return VMW.VMwarePortgroupPolicy(
        vlanOverrideAllowed=vlan,
        securityPolicyOverrideAllowed=security,
        blockOverrideAllowed=block,
        shapingOverrideAllowed=False,
        vendorConfigOverrideAllowed=False,
        livePortMovingAllowed=False,
        portConfigResetAtDisconnect=True,
        uplinkTeamingOverrideAllowed=False,
    )


def vlan_spec(key, vlan, version=None):
    spec = vim.dvs.DistributedVirtualPort.ConfigSpec(
        key=key,
        operation="edit",
        setting=VMW.VmwarePortConfigPolicy(vlan=VMW.VlanIdSpec(vlanId=vlan, inherited=False)),
    )
    if version is not None:
        spec.configVersion = version
    return spec


def fetch(dvs, **criteria):
    return dvs.FetchDVPorts(vim.dvs.PortCriteria(**criteria))


def test_new_portgroup_gets_its_ports_and_vcenter_defaults(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    before = {p.key for p in fetch(dvs)}

    pg = add_portgroup(dvs, "pg-new", 16)

    assert pg.config.type == "earlyBinding"
    assert pg.config.numPorts == 16
    keys = list(pg.portKeys)
    assert len(keys) == 16 == len(set(keys))
    assert not set(keys) & before, "port keys are unique within the switch"
    setting = pg.config.defaultPortConfig
    security = setting.securityPolicy
    assert (security.allowPromiscuous.value, security.forgedTransmits.value) == (False, False)
    assert security.macChanges.value is False
    assert setting.blocked.value is False
    uplinks = list(dvs.config.uplinkPortPolicy.uplinkPortName)
    assert uplinks, "the switch names its uplinks"
    assert list(setting.uplinkTeamingPolicy.uplinkPortOrder.activeUplinkPort) == uplinks

    ports = fetch(dvs, portgroupKey=[pg.key], inside=True)
    assert sorted(p.key for p in ports) == sorted(keys)
    assert {p.portgroupKey for p in ports} == {pg.key}
    assert all(p.connectee is None and p.config.configVersion == "0" for p in ports)
    assert pg.key not in {p.key for p in fetch(dvs)}, "no pseudo-port named after the port group"
    outside = fetch(dvs, portgroupKey=[pg.key], inside=False)
    assert outside and not {p.key for p in outside} & set(keys)


def test_reconfigure_portgroup_changes_only_what_is_set(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    pg = add_portgroup(
        dvs,
        "pg-keep",
        4,
        policy=override_policy(),
        setting=VMW.VmwarePortConfigPolicy(vlan=VMW.VlanIdSpec(vlanId=10, inherited=False)),
    )
    version = pg.config.configVersion

    spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(numPorts=12, configVersion=version)
    wait(pg.ReconfigureDVPortgroup_Task(spec))

    assert pg.config.defaultPortConfig.vlan.vlanId == 10
    assert pg.config.policy.vlanOverrideAllowed is True
    assert pg.config.type == "earlyBinding"
    assert pg.config.numPorts == 12 and len(pg.portKeys) == 12
    assert pg.config.configVersion != version

    stale = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(description="x", configVersion=version)
    fault = failure(pg.ReconfigureDVPortgroup_Task(stale))
    assert isinstance(fault, vim.fault.ConcurrentAccess)
    assert "configVersion" in fault.msg


def test_500_ports_get_distinct_vlans_in_one_call(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    pg = add_portgroup(dvs, "pg-500", 500, policy=override_policy())
    keys = list(pg.portKeys)
    wanted = {key: 100 + i for i, key in enumerate(keys)}

    wait(dvs.ReconfigureDVPort_Task([vlan_spec(k, v, "0") for k, v in wanted.items()]))

    ports = fetch(dvs, portKey=keys)
    assert len(ports) == 500
    for port in ports:
        assert port.config.setting.vlan.vlanId == wanted[port.key]
        assert port.config.setting.vlan.inherited is False
        assert port.config.configVersion == "1"
        assert port.config.setting.blocked.inherited is True
    (event,) = events(si, dvs, "DvsPortReconfiguredEvent")
    assert sorted(event.portKey) == sorted(keys)
    assert event.fullFormattedMessage.startswith(f"Reconfigured ports {keys[0]}, ")
    assert dvs.name in event.fullFormattedMessage
    assert set(dvs.QueryUsedVlanIdInDvs()) == set(wanted.values())


def test_trunk_and_security_override_the_portgroup_the_rest_is_inherited(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    pg = add_portgroup(dvs, "pg-trunk", 2, policy=override_policy())
    trunk_key, plain_key = pg.portKeys
    allow = vim.BoolPolicy(value=True, inherited=False)
    setting = VMW.VmwarePortConfigPolicy(
        vlan=VMW.TrunkVlanSpec(vlanId=[vim.NumericRange(start=0, end=4094)], inherited=False),
        securityPolicy=VMW.SecurityPolicy(
            inherited=False, allowPromiscuous=allow, forgedTransmits=allow, macChanges=allow
        ),
    )
    spec = vim.dvs.DistributedVirtualPort.ConfigSpec(
        key=trunk_key, operation="edit", setting=setting, name="ovs-trunk"
    )
    wait(dvs.ReconfigureDVPort_Task([spec]))

    trunk, plain = sorted(
        fetch(dvs, portKey=[trunk_key, plain_key]), key=lambda p: p.key != trunk_key
    )
    assert trunk.config.name == "ovs-trunk"
    assert isinstance(trunk.config.setting.vlan, VMW.TrunkVlanSpec)
    assert [(r.start, r.end) for r in trunk.config.setting.vlan.vlanId] == [(0, 4094)]
    sec = trunk.config.setting.securityPolicy
    assert sec.inherited is False
    assert (sec.allowPromiscuous.value, sec.forgedTransmits.value, sec.macChanges.value) == (
        True,
        True,
        True,
    )
    assert trunk.state.runtimeInfo.trunkingMode is True
    assert plain.config.setting.vlan.inherited is True
    assert plain.config.setting.securityPolicy.inherited is True
    assert plain.config.setting.securityPolicy.allowPromiscuous.value is False

    reset = vim.dvs.DistributedVirtualPort.ConfigSpec(
        key=trunk_key,
        operation="edit",
        setting=VMW.VmwarePortConfigPolicy(vlan=VMW.VlanIdSpec(vlanId=0, inherited=True)),
    )
    wait(dvs.ReconfigureDVPort_Task([reset]))
    (trunk,) = fetch(dvs, portKey=[trunk_key])
    assert trunk.config.setting.vlan.inherited is True
    assert trunk.config.setting.securityPolicy.allowPromiscuous.value is True


def test_stale_port_config_version_is_concurrent_access(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    pg = add_portgroup(dvs, "pg-race", 1, policy=override_policy())
    (key,) = pg.portKeys
    (port,) = fetch(dvs, portKey=[key])
    read_version = port.config.configVersion

    wait(dvs.ReconfigureDVPort_Task([vlan_spec(key, 201, read_version)]))
    fault = failure(dvs.ReconfigureDVPort_Task([vlan_spec(key, 202, read_version)]))

    assert isinstance(fault, vim.fault.ConcurrentAccess)
    assert key in fault.msg
    (port,) = fetch(dvs, portKey=[key])
    assert port.config.setting.vlan.vlanId == 201
    assert port.config.configVersion == str(int(read_version) + 1)


def test_unknown_port_is_not_found_and_nothing_is_applied(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    pg = add_portgroup(dvs, "pg-all-or-nothing", 1, policy=override_policy())
    (key,) = pg.portKeys

    fault = failure(dvs.ReconfigureDVPort_Task([vlan_spec(key, 7), vlan_spec("99999", 8)]))

    assert isinstance(fault, vim.fault.NotFound)
    assert "99999" in fault.msg
    (port,) = fetch(dvs, portKey=[key])
    assert port.config.setting.vlan.inherited is True
    assert port.config.configVersion == "0"
    assert events(si, dvs, "DvsPortReconfiguredEvent") == []


def test_overrides_the_portgroup_does_not_allow_are_refused(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    pg = add_portgroup(
        dvs, "pg-strict", 3, policy=override_policy(vlan=False, security=False, block=False)
    )
    vlan_key, security_key, block_key = pg.portKeys

    fault = failure(dvs.ReconfigureDVPort_Task([vlan_spec(vlan_key, 5)]))
    assert isinstance(fault, vmodl.fault.InvalidArgument)
    assert "vlanOverrideAllowed" in fault.msg and "pg-strict" in fault.msg

    promiscuous = VMW.SecurityPolicy(
        inherited=False, allowPromiscuous=vim.BoolPolicy(value=True, inherited=False)
    )
    spec = vim.dvs.DistributedVirtualPort.ConfigSpec(
        key=security_key,
        operation="edit",
        setting=VMW.VmwarePortConfigPolicy(securityPolicy=promiscuous),
    )
    fault = failure(dvs.ReconfigureDVPort_Task([spec]))
    assert "securityPolicyOverrideAllowed" in fault.msg

    block = vim.dvs.DistributedVirtualPort.ConfigSpec(
        key=block_key,
        operation="edit",
        setting=VMW.VmwarePortConfigPolicy(blocked=vim.BoolPolicy(value=True, inherited=False)),
    )
    fault = failure(dvs.ReconfigureDVPort_Task([block]))
    assert "blockOverrideAllowed" in fault.msg

    # The stock port group policy of a new port group allows blocking a port.
    default_pg = add_portgroup(dvs, "pg-default", 1)
    block.key = default_pg.portKeys[0]
    wait(dvs.ReconfigureDVPort_Task([block]))
    (port,) = fetch(dvs, portKey=[block.key])
    assert port.config.setting.blocked.value is True
    assert port.state.runtimeInfo.blocked is True


def test_fetch_criteria_select_connected_and_uplink_ports(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    vms = inventory(si, vim.VirtualMachine)

    connected = fetch(dvs, connected=True)
    assert len(connected) == len(vms)
    by_vm = {p.connectee.connectedEntity: p for p in connected}
    for vm in vms:
        (nic,) = [
            d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualEthernetCard)
        ]
        port = by_vm[vm]
        assert port.connectee.type == "vmVnic"
        assert port.connectee.nicKey == str(nic.key)
        assert nic.backing.port.portKey == port.key
        assert port.proxyHost == vm.runtime.host
        assert port.state.runtimeInfo.macAddress == nic.macAddress

    uplinks = fetch(dvs, uplinkPort=True)
    members = [m.config.host for m in dvs.config.host]
    assert len(uplinks) == len(members) * len(dvs.config.uplinkPortPolicy.uplinkPortName)
    assert {p.proxyHost for p in uplinks} == set(members)
    assert not {p.key for p in uplinks} & {p.key for p in fetch(dvs, uplinkPort=False)}
    assert sorted(dvs.FetchDVPortKeys(vim.dvs.PortCriteria(uplinkPort=True))) == sorted(
        p.key for p in uplinks
    )
