"""vDS membership and login in the extended simulator, read back through pyVmomi."""

import pytest
from pyVim.connect import SmartConnect
from pyVmomi import vim

from ovsphere.testing.vcsim import connect, failure, inventory, wait

pytestmark = pytest.mark.functional


def dvswitch(si):
    (dvs,) = inventory(si, vim.DistributedVirtualSwitch)
    return dvs


def uplink_keys(dvs, host):
    ports = dvs.FetchDVPorts(vim.dvs.PortCriteria(uplinkPort=True, host=[host]))
    return sorted(p.key for p in ports)


def assert_member(dvs, host):
    (entry,) = [m for m in dvs.config.host if m.config.host == host]
    assert sorted(entry.uplinkPortKey) == uplink_keys(dvs, host)
    assert len(entry.uplinkPortKey) == len(dvs.config.uplinkPortPolicy.uplinkPortName)
    (proxy,) = [p for p in host.config.network.proxySwitch if p.dvsUuid == dvs.uuid]
    assert (proxy.dvsName, proxy.key) == (dvs.name, dvs.uuid)
    assert sorted(kv.key for kv in proxy.uplinkPort) == uplink_keys(dvs, host)
    assert sorted(kv.value for kv in proxy.uplinkPort) == sorted(
        dvs.config.uplinkPortPolicy.uplinkPortName
    )


def test_switch_lists_its_members_uplinks_and_hosts_show_the_proxy_switch(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    hosts = inventory(si, vim.HostSystem)

    assert sorted(m.config.host.name for m in dvs.config.host) == sorted(h.name for h in hosts)
    assert all(m.status == "up" for m in dvs.config.host)
    (uplink_pg,) = dvs.config.uplinkPortgroup
    assert uplink_pg.name.startswith(f"{dvs.name}-DVUplinks")
    assert uplink_pg.config.uplink is True
    assert sorted(uplink_pg.portKeys) == sorted(k for m in dvs.config.host for k in m.uplinkPortKey)
    names = list(dvs.config.uplinkPortPolicy.uplinkPortName)
    assert len(names) >= 1
    for host in hosts:
        assert_member(dvs, host)


def test_reconfigure_dvs_removes_and_adds_a_host(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    busy = {vm.runtime.host for vm in inventory(si, vim.VirtualMachine)}
    idle = next(h for h in inventory(si, vim.HostSystem) if h not in busy)
    version = dvs.config.configVersion

    remove = vim.dvs.HostMember.ConfigSpec(operation="remove", host=idle)
    wait(
        dvs.ReconfigureDvs_Task(
            vim.DistributedVirtualSwitch.ConfigSpec(host=[remove], configVersion=version)
        )
    )

    assert idle not in [m.config.host for m in dvs.config.host]
    assert idle.config.network.proxySwitch == []
    assert uplink_keys(dvs, idle) == []
    assert all(idle not in pg.host for pg in dvs.portgroup)
    assert not set(dvs.portgroup) & set(idle.network)
    assert dvs.config.configVersion != version

    stale = vim.DistributedVirtualSwitch.ConfigSpec(host=[remove], configVersion=version)
    assert isinstance(failure(dvs.ReconfigureDvs_Task(stale)), vim.fault.ConcurrentAccess)

    add = vim.dvs.HostMember.ConfigSpec(operation="add", host=idle)
    spec = vim.DistributedVirtualSwitch.ConfigSpec(
        host=[add], configVersion=dvs.config.configVersion
    )
    wait(dvs.ReconfigureDvs_Task(spec))
    assert_member(dvs, idle)
    assert all(idle in pg.host for pg in dvs.portgroup)


def test_a_host_with_connected_vms_cannot_leave(vcsim):
    si = connect(vcsim)
    dvs = dvswitch(si)
    vm = inventory(si, vim.VirtualMachine)[0]
    remove = vim.dvs.HostMember.ConfigSpec(operation="remove", host=vm.runtime.host)
    spec = vim.DistributedVirtualSwitch.ConfigSpec(
        host=[remove], configVersion=dvs.config.configVersion
    )

    fault = failure(dvs.ReconfigureDvs_Task(spec))

    assert isinstance(fault, vim.fault.ResourceInUse)
    assert vm.runtime.host.name in fault.msg
    assert_member(dvs, vm.runtime.host)


def test_create_dvs_with_a_member_host(vcsim):
    si = connect(vcsim)
    (datacenter,) = inventory(si, vim.Datacenter)
    host = sorted(inventory(si, vim.HostSystem), key=lambda h: h.name)[0]
    config = vim.dvs.VmwareDistributedVirtualSwitch.ConfigSpec(
        name="ovsphere-dvs",
        host=[vim.dvs.HostMember.ConfigSpec(operation="add", host=host)],
        uplinkPortPolicy=vim.DistributedVirtualSwitch.NameArrayUplinkPortPolicy(
            uplinkPortName=["u1", "u2"]
        ),
    )

    dvs = wait(
        datacenter.networkFolder.CreateDVS_Task(
            vim.DistributedVirtualSwitch.CreateSpec(configSpec=config)
        )
    )

    assert [m.config.host for m in dvs.config.host] == [host]
    assert list(dvs.config.uplinkPortPolicy.uplinkPortName) == ["u1", "u2"]
    (uplink_pg,) = dvs.config.uplinkPortgroup
    assert uplink_pg in dvs.portgroup and len(uplink_pg.portKeys) == 2
    assert uplink_pg.config.type == "earlyBinding" and uplink_pg.config.uplink is True
    assert_member(dvs, host)
    assert len(host.config.network.proxySwitch) == 2

    spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(name="pg-on-new", numPorts=3)
    wait(dvs.AddDVPortgroup_Task([spec]))
    (pg,) = [p for p in dvs.portgroup if p.name == "pg-on-new"]
    order = pg.config.defaultPortConfig.uplinkTeamingPolicy.uplinkPortOrder
    assert list(order.activeUplinkPort) == ["u1", "u2"]
    assert host in pg.host


def test_login_needs_the_configured_user_and_password(vcsim):
    def login(user, pwd):
        return SmartConnect(
            host=vcsim.host, port=vcsim.port, user=user, pwd=pwd, disableSslCertValidation=True
        )

    with pytest.raises(vim.fault.InvalidLogin):
        login(vcsim.options.user, vcsim.options.password + "-wrong")
    with pytest.raises(vim.fault.InvalidLogin):
        login("administrator@vsphere.local", vcsim.options.password)
    si = login(vcsim.options.user, vcsim.options.password)
    assert si.content.sessionManager.currentSession.userName == vcsim.options.user
