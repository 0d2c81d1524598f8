package simulator

// FetchDVPorts in the stock simulator ignores its criteria and returns every
// port group's default setting for keys 0..n-1 of every port group. These
// replacements read ovsState, so they see what ReconfigureDVPort_Task and
// NIC binding did.

import (
	"strconv"

	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func init() {
	ovsRegister((*DistributedVirtualSwitch)(nil), "FetchDVPorts", ovsFetchDVPorts)
	ovsRegister((*DistributedVirtualSwitch)(nil), "FetchDVPortKeys", ovsFetchDVPortKeys)
	ovsRegister((*DistributedVirtualSwitch)(nil), "QueryUsedVlanIdInDvs", ovsQueryUsedVlanIDs)
	ovsRegister((*DistributedVirtualSwitch)(nil), "RefreshDVPortState", ovsRefreshDVPortState)
}

func ovsContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func ovsRefIn(list []types.ManagedObjectReference, ref *types.ManagedObjectReference) bool {
	if ref == nil {
		return false
	}
	for _, x := range list {
		if x == *ref {
			return true
		}
	}
	return false
}

// ovsMatch applies DistributedVirtualSwitchPortCriteria as vSphere documents
// it. "active" is taken to mean "connected": the simulator has no link state.
func ovsMatch(c *types.DistributedVirtualSwitchPortCriteria, p *ovsPort) bool {
	if c == nil {
		return true
	}
	connected := p.nic != nil
	if c.Connected != nil && *c.Connected != connected {
		return false
	}
	if c.Active != nil && *c.Active != connected {
		return false
	}
	if c.UplinkPort != nil && *c.UplinkPort != p.uplink {
		return false
	}
	if c.NsxPort != nil && *c.NsxPort {
		return false
	}
	if c.Inside != nil {
		inside := p.pg != ""
		if len(c.PortgroupKey) != 0 {
			inside = ovsContains(c.PortgroupKey, p.pg)
		}
		if inside != *c.Inside {
			return false
		}
	}
	if len(c.PortKey) != 0 && !ovsContains(c.PortKey, p.key) {
		return false
	}
	if len(c.Host) != 0 && !ovsRefIn(c.Host, p.host) {
		return false
	}
	return true
}

// ovsSelect returns the matching ports in key order; the caller holds ovsState.
func (sw *ovsSwitch) selectPorts(c *types.DistributedVirtualSwitchPortCriteria) []*ovsPort {
	var keys []string
	if c != nil && len(c.PortKey) != 0 {
		for _, k := range c.PortKey {
			if _, ok := sw.ports[k]; ok && !ovsContains(keys, k) {
				keys = append(keys, k)
			}
		}
	} else {
		for k := range sw.ports {
			keys = append(keys, k)
		}
	}
	ovsSortKeys(keys)
	var out []*ovsPort
	for _, k := range keys {
		if p := sw.ports[k]; ovsMatch(c, p) {
			out = append(out, p)
		}
	}
	return out
}

func (sw *ovsSwitch) describe(p *ovsPort) types.DistributedVirtualPort {
	pg := sw.pgs[p.pg]
	if pg == nil {
		pg = &ovsPortgroup{setting: ovsFillPortSetting(nil, sw.uplinks)}
	}
	setting := pg.effective(p)
	vlans, trunk := ovsVlanRanges(setting.Vlan)
	port := types.DistributedVirtualPort{
		Key: p.key,
		Config: types.DVPortConfigInfo{
			Name:          p.name,
			Description:   p.desc,
			Setting:       setting,
			ConfigVersion: strconv.Itoa(p.version),
		},
		DvsUuid:          sw.uuid,
		PortgroupKey:     p.pg,
		ProxyHost:        p.host,
		ConnectionCookie: p.cookie,
		LastStatusChange: p.changed,
		HostLocalPort:    types.NewBool(false),
		State: &types.DVPortState{
			RuntimeInfo: &types.DVPortStatus{
				LinkUp:       p.nic != nil || p.uplink,
				Blocked:      *setting.Blocked.Value,
				VlanIds:      vlans,
				TrunkingMode: types.NewBool(trunk),
				Mtu:          sw.mtu,
				MacAddress:   p.mac,
			},
		},
	}
	if p.nic != nil {
		vm := p.nic.vm
		port.Connectee = &types.DistributedVirtualSwitchPortConnectee{
			ConnectedEntity: &vm,
			NicKey:          strconv.Itoa(int(p.nic.key)),
			Type:            "vmVnic",
		}
	}
	return port
}

func ovsFetchDVPorts(ctx *Context, this mo.Reference, req interface{}, _ ovsNext) soap.HasFault {
	dvs := this.(*DistributedVirtualSwitch)
	r := req.(*types.FetchDVPorts)
	var ports []types.DistributedVirtualPort
	ovsState.Lock()
	if sw := ovsSwitchOf(dvs.Self); sw != nil {
		for _, p := range sw.selectPorts(r.Criteria) {
			ports = append(ports, sw.describe(p))
		}
	}
	ovsState.Unlock()
	return &methods.FetchDVPortsBody{Res: &types.FetchDVPortsResponse{Returnval: ports}}
}

func ovsFetchDVPortKeys(ctx *Context, this mo.Reference, req interface{}, _ ovsNext) soap.HasFault {
	dvs := this.(*DistributedVirtualSwitch)
	r := req.(*types.FetchDVPortKeys)
	var keys []string
	ovsState.Lock()
	if sw := ovsSwitchOf(dvs.Self); sw != nil {
		for _, p := range sw.selectPorts(r.Criteria) {
			keys = append(keys, p.key)
		}
	}
	ovsState.Unlock()
	return &methods.FetchDVPortKeysBody{Res: &types.FetchDVPortKeysResponse{Returnval: keys}}
}

// ovsQueryUsedVlanIDs lists the VLAN ids (not trunks) that port groups and
// ports of the switch use, as vCenter does.
func ovsQueryUsedVlanIDs(ctx *Context, this mo.Reference, req interface{}, _ ovsNext) soap.HasFault {
	dvs := this.(*DistributedVirtualSwitch)
	seen := make(map[int32]bool)
	var ids []int32
	add := func(v types.BaseVmwareDistributedVirtualSwitchVlanSpec) {
		if x, ok := v.(*types.VmwareDistributedVirtualSwitchVlanIdSpec); ok && x.VlanId != 0 && !seen[x.VlanId] {
			seen[x.VlanId] = true
			ids = append(ids, x.VlanId)
		}
	}
	ovsState.Lock()
	if sw := ovsSwitchOf(dvs.Self); sw != nil {
		for _, pg := range sw.pgs {
			add(pg.setting.Vlan)
		}
		for _, p := range sw.ports {
			if p.vlan != nil {
				add(p.vlan)
			}
		}
	}
	ovsState.Unlock()
	return &methods.QueryUsedVlanIdInDvsBody{Res: &types.QueryUsedVlanIdInDvsResponse{Returnval: ids}}
}

// RefreshDVPortState asks hosts for fresh runtime state; the simulated state
// is always fresh.
func ovsRefreshDVPortState(ctx *Context, this mo.Reference, req interface{}, _ ovsNext) soap.HasFault {
	return &methods.RefreshDVPortStateBody{Res: &types.RefreshDVPortStateResponse{}}
}
