package simulator

// The stock simulator records a switch's member hosts only in
// summary.hostMember: config.host, config.uplinkPortgroup and the hosts'
// config.network.proxySwitch stay empty, the uplink port group has no ports,
// and removing a host leaves it in the port groups' host lists. ovsphere reads
// membership the way it reads it from vCenter, so ovsSyncSwitch derives all
// of these from summary.hostMember after every change of membership.

import (
	"sort"
	"strconv"

	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func init() {
	ovsRegister((*Folder)(nil), "CreateDVS_Task", ovsCreateDVS)
	ovsRegister((*DistributedVirtualSwitch)(nil), "ReconfigureDvs_Task", ovsReconfigureDvs)
	ovsRegister((*DistributedVirtualSwitch)(nil), "Destroy_Task", ovsDestroyDVS)
}

// Backings of member hosts as the specs gave them, by switch and host;
// guarded by ovsState.
var ovsBackings = make(map[types.ManagedObjectReference]map[types.ManagedObjectReference]types.BaseDistributedVirtualSwitchHostMemberBacking)

func ovsUplinkNames(policy types.BaseDVSUplinkPortPolicy) []string {
	if p, ok := policy.(*types.DVSNameArrayUplinkPortPolicy); ok && len(p.UplinkPortName) > 0 {
		return append([]string(nil), p.UplinkPortName...)
	}
	return append([]string(nil), ovsDefaultUplinks...)
}

func ovsRefsWithout(refs []types.ManagedObjectReference, drop map[types.ManagedObjectReference]bool) []types.ManagedObjectReference {
	out := make([]types.ManagedObjectReference, 0, len(refs))
	for _, ref := range refs {
		if !drop[ref] {
			out = append(out, ref)
		}
	}
	return out
}

// ovsUplinkPortgroup returns the switch's uplink port group: the one its
// config names, else the one the stock CreateDVS_Task made ("<dvs>-DVUplinks-
// <n>"), else a new "<dvs>-DVUplinks".
func ovsUplinkPortgroup(ctx *Context, dvs *DistributedVirtualSwitch) *DistributedVirtualPortgroup {
	info := dvs.Config.GetDVSConfigInfo()
	for _, ref := range info.UplinkPortgroup {
		if pg, ok := Map.Get(ref).(*DistributedVirtualPortgroup); ok {
			return pg
		}
	}
	prefix := dvs.Name + "-DVUplinks"
	for _, ref := range dvs.Portgroup {
		if pg, ok := Map.Get(ref).(*DistributedVirtualPortgroup); ok && len(pg.Name) >= len(prefix) && pg.Name[:len(prefix)] == prefix {
			return pg
		}
	}
	dvs.AddDVPortgroupTask(ctx, &types.AddDVPortgroup_Task{
		This: dvs.Self,
		Spec: []types.DVPortgroupConfigSpec{{
			Name: prefix,
			Type: ovsEarlyBinding,
			DefaultPortConfig: &types.VMwareDVSPortSetting{
				Vlan: &types.VmwareDistributedVirtualSwitchTrunkVlanSpec{VlanId: []types.NumericRange{{Start: 0, End: 4094}}},
			},
		}},
	})
	for _, ref := range dvs.Portgroup {
		if pg, ok := Map.Get(ref).(*DistributedVirtualPortgroup); ok && pg.Name == prefix {
			return pg
		}
	}
	return nil
}

// ovsSyncSwitch brings ovsState, the switch's config and its hosts in line
// with summary.hostMember. The caller holds the switch's lock.
func ovsSyncSwitch(ctx *Context, dvs *DistributedVirtualSwitch) {
	uplinkPG := ovsUplinkPortgroup(ctx, dvs)
	info := dvs.Config.GetDVSConfigInfo()
	names := ovsUplinkNames(info.UplinkPortPolicy)
	mtu := int32(1500)
	if c, ok := dvs.Config.(*types.VMwareDVSConfigInfo); ok && c.MaxMtu != 0 {
		mtu = c.MaxMtu
	}
	if uplinkPG != nil && uplinkPG.Config.Type == "" {
		// The stock CreateDVS_Task leaves its uplink port group untyped and
		// without the policies every vCenter port group has.
		ctx.WithLock(uplinkPG, func() {
			cfg := uplinkPG.Config
			cfg.Type = ovsEarlyBinding
			cfg.DefaultPortConfig = ovsFillPortSetting(cfg.DefaultPortConfig, names)
			if cfg.ConfigVersion == "" {
				cfg.ConfigVersion = "0"
			}
			Map.Update(uplinkPG, []types.PropertyChange{{Name: "config", Val: cfg}})
		})
	}
	ovsState.Lock()
	backings := make(map[types.ManagedObjectReference]types.BaseDistributedVirtualSwitchHostMemberBacking)
	for h, b := range ovsBackings[dvs.Self] {
		backings[h] = b
	}
	sw := ovsState.switches[dvs.Self]
	if sw == nil {
		sw = &ovsSwitch{
			ref:   dvs.Self,
			ports: make(map[string]*ovsPort),
			pgs:   make(map[string]*ovsPortgroup),
			nics:  make(map[ovsNic]*ovsPort),
			byVM:  make(map[types.ManagedObjectReference]map[*ovsPort]bool),
		}
		ovsState.switches[dvs.Self] = sw
	}
	sw.uuid, sw.name, sw.uplinks, sw.mtu = dvs.Uuid, dvs.Name, names, mtu
	if uplinkPG != nil {
		sw.uplinkPG = uplinkPG.Key
	}
	publish := make(map[types.ManagedObjectReference]bool)
	for _, ref := range dvs.Portgroup {
		if pg, ok := Map.Get(ref).(*DistributedVirtualPortgroup); ok {
			if m, known := sw.pgs[pg.Key]; !known {
				sw.mirror(pg, pg.Key == sw.uplinkPG)
				publish[ref] = true
			} else if pg.Key == sw.uplinkPG && !m.uplink {
				m.uplink = true
				publish[ref] = true
			}
		}
	}

	oldMembers := sw.members
	sw.members = append([]types.ManagedObjectReference(nil), dvs.Summary.HostMember...)
	isMember := make(map[types.ManagedObjectReference]bool)
	for _, h := range sw.members {
		isMember[h] = true
	}
	removed := make(map[types.ManagedObjectReference]bool)
	for _, h := range oldMembers {
		if !isMember[h] {
			removed[h] = true
		}
	}

	uplinkKeys := make(map[types.ManagedObjectReference][]string)
	if um := sw.pgs[sw.uplinkPG]; um != nil {
		wanted := make(map[string]bool)
		for _, n := range names {
			wanted[n] = true
		}
		have := make(map[types.ManagedObjectReference]map[string]bool)
		for _, key := range append([]string(nil), um.ports...) {
			p := sw.ports[key]
			if p == nil || p.host == nil || !isMember[*p.host] || !wanted[p.name] || have[*p.host][p.name] {
				sw.removePort(key)
				publish[um.ref] = true
				continue
			}
			if have[*p.host] == nil {
				have[*p.host] = make(map[string]bool)
			}
			have[*p.host][p.name] = true
		}
		for _, h := range sw.members {
			for _, n := range names {
				if !have[h][n] {
					host := h
					p := sw.newPort(um)
					p.uplink, p.host, p.name = true, &host, n
					publish[um.ref] = true
				}
			}
		}
		for _, key := range um.ports {
			if p := sw.ports[key]; p != nil && p.host != nil {
				uplinkKeys[*p.host] = append(uplinkKeys[*p.host], key)
			}
		}
	}
	numPorts := int32(len(sw.ports))
	ovsState.Unlock()

	var members []types.DistributedVirtualSwitchHostMember
	for _, h := range dvs.Summary.HostMember {
		host := h
		var backing types.BaseDistributedVirtualSwitchHostMemberBacking = &types.DistributedVirtualSwitchHostMemberPnicBacking{}
		if b := backings[h]; b != nil {
			backing = b
		}
		product := info.ProductInfo
		members = append(members, types.DistributedVirtualSwitchHostMember{
			Config: types.DistributedVirtualSwitchHostMemberConfigInfo{
				Host:                &host,
				MaxProxySwitchPorts: ovsProxyPorts,
				Backing:             backing,
			},
			ProductInfo:   &product,
			UplinkPortKey: uplinkKeys[h],
			Status:        "up",
		})
	}
	var uplinkRefs []types.ManagedObjectReference
	if uplinkPG != nil {
		uplinkRefs = []types.ManagedObjectReference{uplinkPG.Self}
	}
	policy := &types.DVSNameArrayUplinkPortPolicy{UplinkPortName: names}

	var cfg types.BaseDVSConfigInfo
	var base *types.DVSConfigInfo
	switch c := dvs.Config.(type) {
	case *types.VMwareDVSConfigInfo:
		cp := *c
		cp.MaxMtu = mtu
		cfg, base = &cp, &cp.DVSConfigInfo
	default:
		cp := *info
		cfg, base = &cp, &cp
	}
	base.Host = members
	base.UplinkPortgroup = uplinkRefs
	base.UplinkPortPolicy = policy
	base.NumPorts = numPorts
	if base.ConfigVersion == "" {
		base.ConfigVersion = "0"
	}
	// The extra names reach clients that watch a part of config; Map.Update
	// applies only "config" (it cannot walk through the config interface).
	Map.Update(dvs, []types.PropertyChange{
		{Name: "config", Val: cfg},
		{Name: "config.host", Val: members},
		{Name: "config.uplinkPortgroup", Val: uplinkRefs},
		{Name: "config.uplinkPortPolicy", Val: policy},
		{Name: "summary.numPorts", Val: numPorts},
	})

	ovsPublishPGs(ctx, ovsRefs(publish))

	if len(removed) != 0 {
		ovsDropHosts(ctx, dvs, removed)
	}
	hosts := make(map[types.ManagedObjectReference]bool)
	for _, h := range oldMembers {
		hosts[h] = true
	}
	for _, h := range dvs.Summary.HostMember {
		hosts[h] = true
	}
	for _, h := range ovsRefs(hosts) {
		ovsPublishHost(ctx, h)
	}
}

// ovsDropHosts undoes, for hosts that left the switch, what the stock
// ReconfigureDvs_Task did when they joined: the port groups' host lists and
// the hosts' (and their compute resources') network lists.
func ovsDropHosts(ctx *Context, dvs *DistributedVirtualSwitch, removed map[types.ManagedObjectReference]bool) {
	pgs := make(map[types.ManagedObjectReference]bool)
	for _, ref := range dvs.Portgroup {
		pgs[ref] = true
		if pg, ok := Map.Get(ref).(*DistributedVirtualPortgroup); ok {
			ctx.WithLock(pg, func() {
				Map.Update(pg, []types.PropertyChange{{Name: "host", Val: ovsRefsWithout(pg.Host, removed)}})
			})
		}
	}
	for h := range removed {
		host, ok := Map.Get(h).(*HostSystem)
		if !ok {
			continue
		}
		ctx.WithLock(host, func() {
			Map.Update(host, []types.PropertyChange{{Name: "network", Val: ovsRefsWithout(host.Network, pgs)}})
		})
	}
}

func ovsProxySwitches(host types.ManagedObjectReference) []types.HostProxySwitch {
	var out []types.HostProxySwitch
	for _, sw := range ovsState.switches {
		member := false
		for _, h := range sw.members {
			member = member || h == host
		}
		if !member {
			continue
		}
		var uplinks []types.KeyValue
		used := 0
		for _, key := range sw.pgs[sw.uplinkPG].portsOrNil() {
			if p := sw.ports[key]; p != nil && p.host != nil && *p.host == host {
				uplinks = append(uplinks, types.KeyValue{Key: p.key, Value: p.name})
			}
		}
		for _, p := range sw.ports {
			if p.host != nil && *p.host == host {
				used++
			}
		}
		var backing types.BaseDistributedVirtualSwitchHostMemberBacking = &types.DistributedVirtualSwitchHostMemberPnicBacking{}
		var pnics []string
		if b := ovsBackings[sw.ref][host]; b != nil {
			backing = b
			if pb, ok := b.(*types.DistributedVirtualSwitchHostMemberPnicBacking); ok {
				for _, spec := range pb.PnicSpec {
					pnics = append(pnics, spec.PnicDevice)
				}
			}
		}
		out = append(out, types.HostProxySwitch{
			DvsUuid:           sw.uuid,
			DvsName:           sw.name,
			Key:               sw.uuid,
			NumPorts:          ovsProxyPorts,
			ConfigNumPorts:    ovsProxyPorts,
			NumPortsAvailable: int32(ovsProxyPorts - used),
			UplinkPort:        uplinks,
			Mtu:               sw.mtu,
			Pnic:              pnics,
			Spec:              types.HostProxySwitchSpec{Backing: backing},
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DvsName < out[j].DvsName })
	return out
}

func (pg *ovsPortgroup) portsOrNil() []string {
	if pg == nil {
		return nil
	}
	return pg.ports
}

// ovsPublishHost shows a host's proxy switches in its config and in its
// network system's networkInfo, as an ESX host does.
func ovsPublishHost(ctx *Context, ref types.ManagedObjectReference) {
	host, ok := Map.Get(ref).(*HostSystem)
	if !ok {
		return
	}
	ovsState.Lock()
	list := ovsProxySwitches(ref)
	ovsState.Unlock()
	ctx.WithLock(host, func() {
		if host.Config != nil && host.Config.Network != nil {
			Map.Update(host, []types.PropertyChange{{Name: "config.network.proxySwitch", Val: list}})
		}
	})
	if ref := host.ConfigManager.NetworkSystem; ref != nil {
		if ns, ok := Map.Get(*ref).(*HostNetworkSystem); ok {
			ctx.WithLock(ns, func() {
				if ns.NetworkInfo != nil {
					Map.Update(ns, []types.PropertyChange{
						{Name: "networkInfo.proxySwitch", Val: append([]types.HostProxySwitch(nil), list...)},
					})
				}
			})
		}
	}
}

func ovsCheckMembers(dvs *DistributedVirtualSwitch, specs []types.DistributedVirtualSwitchHostMemberConfigSpec) *ovsError {
	members := make(map[types.ManagedObjectReference]bool)
	if dvs != nil {
		for _, h := range dvs.Summary.HostMember {
			members[h] = true
		}
	}
	for _, m := range specs {
		host, ok := Map.Get(m.Host).(*HostSystem)
		if !ok {
			return ovsErr(&types.ManagedObjectNotFound{Obj: m.Host}, "host %s does not exist", m.Host.Value)
		}
		switch types.ConfigSpecOperation(m.Operation) {
		case types.ConfigSpecOperationAdd:
			if members[m.Host] {
				return ovsErr(&types.AlreadyExists{Name: host.Name}, "host %s is already a member of the switch", host.Name)
			}
			members[m.Host] = true
		case types.ConfigSpecOperationRemove:
			if !members[m.Host] {
				return ovsErr(&types.NotFound{}, "host %s is not a member of the switch", host.Name)
			}
			ovsState.Lock()
			busy := 0
			if sw := ovsSwitchOf(dvs.Self); sw != nil {
				for _, p := range sw.ports {
					if p.nic != nil && p.host != nil && *p.host == m.Host {
						busy++
					}
				}
			}
			ovsState.Unlock()
			if busy > 0 {
				return ovsErr(&types.ResourceInUse{Type: "HostSystem", Name: host.Name},
					"host %s cannot leave the switch: %d VM NICs on it are connected to the switch", host.Name, busy)
			}
			delete(members, m.Host)
		case types.ConfigSpecOperationEdit:
			if !members[m.Host] {
				return ovsErr(&types.NotFound{}, "host %s is not a member of the switch", host.Name)
			}
		default:
			return ovsErr(&types.InvalidArgument{InvalidProperty: "spec.host.operation"},
				"host %s: operation %q is not add, edit or remove", host.Name, m.Operation)
		}
	}
	return nil
}

func ovsRememberBackings(dvs types.ManagedObjectReference, specs []types.DistributedVirtualSwitchHostMemberConfigSpec) {
	ovsState.Lock()
	defer ovsState.Unlock()
	if ovsBackings[dvs] == nil {
		ovsBackings[dvs] = make(map[types.ManagedObjectReference]types.BaseDistributedVirtualSwitchHostMemberBacking)
	}
	for _, m := range specs {
		switch types.ConfigSpecOperation(m.Operation) {
		case types.ConfigSpecOperationRemove:
			delete(ovsBackings[dvs], m.Host)
		default:
			if m.Backing != nil {
				ovsBackings[dvs][m.Host] = m.Backing
			}
		}
	}
}

func ovsCreateDVS(ctx *Context, this mo.Reference, req interface{}, next ovsNext) soap.HasFault {
	r := req.(*types.CreateDVS_Task)
	spec := r.Spec.ConfigSpec.GetDVSConfigSpec()
	err := ovsCheckMembers(nil, spec.Host)
	if err == nil && spec.UplinkPortPolicy != nil {
		if p, ok := spec.UplinkPortPolicy.(*types.DVSNameArrayUplinkPortPolicy); !ok || len(p.UplinkPortName) == 0 {
			err = ovsErr(&types.InvalidArgument{InvalidProperty: "spec.configSpec.uplinkPortPolicy"},
				"uplinkPortPolicy must be a DVSNameArrayUplinkPortPolicy with at least one name")
		}
	}
	if err != nil {
		task := ovsRunTask(this, "CreateDVSTask", func() (types.AnyType, *ovsError) { return nil, err })
		return &methods.CreateDVS_TaskBody{Res: &types.CreateDVS_TaskResponse{Returnval: task}}
	}

	res := next()
	body, ok := res.(*methods.CreateDVS_TaskBody)
	if !ok || body.Res == nil {
		return res
	}
	result, ok := ovsTaskDone(body.Res.Returnval)
	if !ok {
		return res
	}
	dvs, ok := Map.Get(result.(types.ManagedObjectReference)).(*DistributedVirtualSwitch)
	if !ok {
		return res
	}
	ctx.WithLock(dvs, func() {
		if c, ok := dvs.Config.(*types.VMwareDVSConfigInfo); ok {
			if s, ok := r.Spec.ConfigSpec.(*types.VMwareDVSConfigSpec); ok && s.MaxMtu != 0 {
				c.MaxMtu = s.MaxMtu
			}
		}
		if len(spec.Host) != 0 {
			// The stock CreateDVS_Task ignores spec.host; its
			// ReconfigureDvs_Task does the joining.
			ovsRememberBackings(dvs.Self, spec.Host)
			dvs.ReconfigureDvsTask(&types.ReconfigureDvs_Task{This: dvs.Self, Spec: &types.DVSConfigSpec{Host: spec.Host}})
		}
		ovsSyncSwitch(ctx, dvs)
	})
	return res
}

func ovsReconfigureDvs(ctx *Context, this mo.Reference, req interface{}, next ovsNext) soap.HasFault {
	dvs := this.(*DistributedVirtualSwitch)
	r := req.(*types.ReconfigureDvs_Task)
	spec := r.Spec.GetDVSConfigSpec()
	info := dvs.Config.GetDVSConfigInfo()

	var err *ovsError
	if spec.ConfigVersion != "" && spec.ConfigVersion != info.ConfigVersion {
		err = ovsErr(&types.ConcurrentAccess{},
			"vSphere Distributed Switch %s was changed by another operation: the spec has configVersion %s, the switch is at %s; read it again",
			dvs.Name, spec.ConfigVersion, info.ConfigVersion)
	}
	if err == nil {
		err = ovsCheckMembers(dvs, spec.Host)
	}
	if err == nil && spec.UplinkPortPolicy != nil {
		if p, ok := spec.UplinkPortPolicy.(*types.DVSNameArrayUplinkPortPolicy); !ok || len(p.UplinkPortName) == 0 {
			err = ovsErr(&types.InvalidArgument{InvalidProperty: "spec.uplinkPortPolicy"},
				"uplinkPortPolicy must be a DVSNameArrayUplinkPortPolicy with at least one name")
		}
	}
	if err != nil {
		task := ovsRunTask(dvs, "ReconfigureDvsTask", func() (types.AnyType, *ovsError) { return nil, err })
		return &methods.ReconfigureDvs_TaskBody{Res: &types.ReconfigureDvs_TaskResponse{Returnval: task}}
	}

	// The stock method refuses "edit"; the backings it would change are kept
	// in ovsBackings instead.
	all := spec.Host
	var joinLeave []types.DistributedVirtualSwitchHostMemberConfigSpec
	for _, m := range all {
		if types.ConfigSpecOperation(m.Operation) != types.ConfigSpecOperationEdit {
			joinLeave = append(joinLeave, m)
		}
	}
	spec.Host = joinLeave
	res := next()
	spec.Host = all

	body, ok := res.(*methods.ReconfigureDvs_TaskBody)
	if !ok || body.Res == nil {
		return res
	}
	if _, ok := ovsTaskDone(body.Res.Returnval); !ok {
		return res
	}
	ovsRememberBackings(dvs.Self, all)
	if spec.UplinkPortPolicy != nil || spec.Description != "" {
		var cfg types.BaseDVSConfigInfo
		switch c := dvs.Config.(type) {
		case *types.VMwareDVSConfigInfo:
			cp := *c
			if s, ok := r.Spec.(*types.VMwareDVSConfigSpec); ok && s.MaxMtu != 0 {
				cp.MaxMtu = s.MaxMtu
			}
			cfg = &cp
		case *types.DVSConfigInfo:
			cp := *c
			cfg = &cp
		}
		if cfg != nil {
			if spec.UplinkPortPolicy != nil {
				cfg.GetDVSConfigInfo().UplinkPortPolicy = spec.UplinkPortPolicy
			}
			if spec.Description != "" {
				cfg.GetDVSConfigInfo().Description = spec.Description
			}
			Map.Update(dvs, []types.PropertyChange{{Name: "config", Val: cfg}})
		}
	} else if s, ok := r.Spec.(*types.VMwareDVSConfigSpec); ok && s.MaxMtu != 0 {
		if c, ok := dvs.Config.(*types.VMwareDVSConfigInfo); ok {
			cp := *c
			cp.MaxMtu = s.MaxMtu
			Map.Update(dvs, []types.PropertyChange{{Name: "config", Val: &cp}})
		}
	}
	ovsSyncSwitch(ctx, dvs)
	ovsBumpSwitchVersion(dvs)
	return res
}

func ovsBumpSwitchVersion(dvs *DistributedVirtualSwitch) {
	var cfg types.BaseDVSConfigInfo
	switch c := dvs.Config.(type) {
	case *types.VMwareDVSConfigInfo:
		cp := *c
		cfg = &cp
	case *types.DVSConfigInfo:
		cp := *c
		cfg = &cp
	default:
		return
	}
	info := cfg.GetDVSConfigInfo()
	n, _ := strconv.Atoi(info.ConfigVersion)
	info.ConfigVersion = strconv.Itoa(n + 1)
	Map.Update(dvs, []types.PropertyChange{{Name: "config", Val: cfg}})
}

func ovsDestroyDVS(ctx *Context, this mo.Reference, req interface{}, next ovsNext) soap.HasFault {
	dvs := this.(*DistributedVirtualSwitch)
	ovsState.Lock()
	connected := 0
	var members []types.ManagedObjectReference
	if sw := ovsSwitchOf(dvs.Self); sw != nil {
		connected = len(sw.nics)
		members = sw.members
	}
	ovsState.Unlock()
	if connected > 0 {
		err := ovsErr(&types.ResourceInUse{Type: "DistributedVirtualSwitch", Name: dvs.Name},
			"vSphere Distributed Switch %s has %d connected VM NICs", dvs.Name, connected)
		task := ovsRunTask(dvs, "DestroyTask", func() (types.AnyType, *ovsError) { return nil, err })
		return &methods.Destroy_TaskBody{Res: &types.Destroy_TaskResponse{Returnval: task}}
	}
	res := next()
	if Map.Get(dvs.Self) == nil {
		ovsState.Lock()
		delete(ovsState.switches, dvs.Self)
		delete(ovsBackings, dvs.Self)
		ovsState.Unlock()
		for _, h := range members {
			ovsPublishHost(ctx, h)
		}
	}
	return res
}
