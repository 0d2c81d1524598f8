package simulator

// Port group life cycle as vCenter does it: a new port group gets numPorts
// ports with keys unique in the switch and vCenter's default policies; a
// reconfiguration changes only what the spec sets (the stock one copies every
// field of the spec, wiping the unset ones), checks configVersion, grows or
// shrinks the ports; a port group in use cannot be destroyed.

import (
	"strconv"

	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func init() {
	ovsRegister((*DistributedVirtualSwitch)(nil), "AddDVPortgroup_Task", ovsAddDVPortgroup)
	ovsRegister((*DistributedVirtualPortgroup)(nil), "ReconfigureDVPortgroup_Task", ovsReconfigureDVPortgroup)
	ovsRegister((*DistributedVirtualPortgroup)(nil), "Destroy_Task", ovsDestroyDVPortgroup)
}

func ovsCheckPortgroupType(kind string) *ovsError {
	switch kind {
	case "", ovsEarlyBinding, ovsLateBinding, ovsEphemeral:
		return nil
	}
	return ovsErr(&types.InvalidArgument{InvalidProperty: "spec.type"},
		"port group type %q is not earlyBinding, lateBinding or ephemeral", kind)
}

func ovsCheckPortSetting(s types.BaseDVPortSetting) *ovsError {
	if x, ok := s.(*types.VMwareDVSPortSetting); ok && x.Vlan != nil {
		if problem := ovsVlanProblem(x.Vlan); problem != "" {
			return ovsErr(&types.InvalidArgument{InvalidProperty: "spec.defaultPortConfig.vlan"}, "%s", problem)
		}
	}
	return nil
}

func ovsAddDVPortgroup(ctx *Context, this mo.Reference, req interface{}, next ovsNext) soap.HasFault {
	dvs := this.(*DistributedVirtualSwitch)
	r := req.(*types.AddDVPortgroup_Task)

	ovsState.Lock()
	uplinks := ovsDefaultUplinks
	if sw := ovsSwitchOf(dvs.Self); sw != nil {
		uplinks = sw.uplinks
	}
	ovsState.Unlock()

	for i := range r.Spec {
		spec := &r.Spec[i]
		err := ovsCheckPortgroupType(spec.Type)
		if err == nil && spec.NumPorts < 0 {
			err = ovsErr(&types.InvalidArgument{InvalidProperty: "spec.numPorts"}, "numPorts %d is negative", spec.NumPorts)
		}
		if err == nil {
			err = ovsCheckPortSetting(spec.DefaultPortConfig)
		}
		if err != nil {
			task := ovsRunTask(dvs, "AddDVPortgroupTask", func() (types.AnyType, *ovsError) { return nil, err })
			return &methods.AddDVPortgroup_TaskBody{Res: &types.AddDVPortgroup_TaskResponse{Returnval: task}}
		}
		if spec.Type == "" {
			spec.Type = ovsEarlyBinding
		}
		spec.DefaultPortConfig = ovsFillPortSetting(spec.DefaultPortConfig, uplinks)
		spec.ConfigVersion = "0"
	}

	res := next()
	ovsPublishPGs(ctx, ovsAdoptPortgroups(dvs))
	return res
}

// ovsAdoptPortgroups gives the switch's port groups that ovsState does not
// know yet their ports; the caller holds the switch's lock.
func ovsAdoptPortgroups(dvs *DistributedVirtualSwitch) []types.ManagedObjectReference {
	ovsState.Lock()
	defer ovsState.Unlock()
	sw := ovsSwitchOf(dvs.Self)
	if sw == nil {
		return nil
	}
	var adopted []types.ManagedObjectReference
	for _, ref := range dvs.Portgroup {
		pg, ok := Map.Get(ref).(*DistributedVirtualPortgroup)
		if !ok {
			continue
		}
		if _, known := sw.pgs[pg.Key]; !known {
			sw.mirror(pg, pg.Key == sw.uplinkPG)
			adopted = append(adopted, ref)
		}
	}
	return adopted
}

// ovsNewPortgroupConfig merges a reconfiguration spec into the current
// configuration; only what the spec sets changes.
func ovsNewPortgroupConfig(pg *DistributedVirtualPortgroup, spec *types.DVPortgroupConfigSpec, uplink bool) (types.DVPortgroupConfigInfo, *ovsError) {
	cur := pg.Config
	cfg := cur
	if spec.ConfigVersion != "" && spec.ConfigVersion != cur.ConfigVersion {
		return cfg, ovsErr(&types.ConcurrentAccess{},
			"port group %s was changed by another operation: the spec has configVersion %s, the port group is at %s; read it again",
			cur.Name, spec.ConfigVersion, cur.ConfigVersion)
	}
	if spec.Name != "" && spec.Name != cur.Name {
		if f, ok := asFolderMO(Map.getEntityParent(pg, "Folder")); ok {
			if obj := Map.FindByName(spec.Name, f.ChildEntity); obj != nil {
				return cfg, ovsErr(&types.DuplicateName{Name: spec.Name, Object: obj.Reference()},
					"the name %q is already used by %s", spec.Name, obj.Reference().Value)
			}
		}
		cfg.Name = spec.Name
	}
	if err := ovsCheckPortgroupType(spec.Type); err != nil {
		return cfg, err
	}
	if spec.NumPorts < 0 {
		return cfg, ovsErr(&types.InvalidArgument{InvalidProperty: "spec.numPorts"}, "numPorts %d is negative", spec.NumPorts)
	}
	if uplink && ((spec.NumPorts != 0 && spec.NumPorts != cur.NumPorts) || (spec.Type != "" && spec.Type != cur.Type)) {
		return cfg, ovsErr(&types.NotSupported{},
			"the ports of uplink port group %s follow the switch's member hosts and uplink names; numPorts and type cannot be set", cur.Name)
	}
	if spec.Type != "" {
		cfg.Type = spec.Type
	}
	if spec.NumPorts != 0 {
		cfg.NumPorts = spec.NumPorts
	}
	if spec.DefaultPortConfig != nil {
		if err := ovsCheckPortSetting(spec.DefaultPortConfig); err != nil {
			return cfg, err
		}
		cfg.DefaultPortConfig = ovsMergePortSetting(ovsFillPortSetting(cur.DefaultPortConfig, nil), spec.DefaultPortConfig)
	}
	if spec.Policy != nil {
		cfg.Policy = spec.Policy
	}
	if spec.AutoExpand != nil {
		cfg.AutoExpand = types.NewBool(*spec.AutoExpand)
	}
	if spec.Description != "" {
		cfg.Description = spec.Description
	}
	if spec.PortNameFormat != "" {
		cfg.PortNameFormat = spec.PortNameFormat
	}
	if spec.Scope != nil {
		cfg.Scope = spec.Scope
	}
	if spec.VendorSpecificConfig != nil {
		cfg.VendorSpecificConfig = spec.VendorSpecificConfig
	}
	if spec.VmVnicNetworkResourcePoolKey != "" {
		cfg.VmVnicNetworkResourcePoolKey = spec.VmVnicNetworkResourcePoolKey
	}
	if spec.BackingType != "" {
		cfg.BackingType = spec.BackingType
	}
	if spec.LogicalSwitchUuid != "" {
		cfg.LogicalSwitchUuid = spec.LogicalSwitchUuid
	}
	n, _ := strconv.Atoi(cur.ConfigVersion)
	cfg.ConfigVersion = strconv.Itoa(n + 1)
	return cfg, nil
}

// resize makes the port group's ports match cfg; the caller holds ovsState.
func (sw *ovsSwitch) resize(m *ovsPortgroup, cfg *types.DVPortgroupConfigInfo) *ovsError {
	connected := 0
	for _, key := range m.ports {
		if p := sw.ports[key]; p != nil && p.nic != nil {
			connected++
		}
	}
	if cfg.Type == ovsEphemeral && m.kind != ovsEphemeral && connected > 0 {
		return ovsErr(&types.ResourceInUse{Type: "DistributedVirtualPortgroup", Name: m.name},
			"port group %s has %d connected ports; disconnect them before making it ephemeral", m.name, connected)
	}
	if !m.uplink {
		want, have := int(cfg.NumPorts), len(m.ports)
		if want < have {
			free := sw.freePorts(m)
			drop := have - want
			if len(free) < drop {
				return ovsErr(&types.ResourceInUse{Type: "DistributedVirtualPortgroup", Name: m.name},
					"cannot shrink port group %s to %d ports: %d of its %d ports are connected", m.name, want, connected, have)
			}
			for _, p := range free[len(free)-drop:] {
				sw.removePort(p.key)
			}
		}
		if want > have {
			sw.addPorts(m, want-have)
		}
	}
	m.name = cfg.Name
	m.kind = cfg.Type
	m.autoExpand = cfg.AutoExpand != nil && *cfg.AutoExpand
	m.setting = ovsFillPortSetting(cfg.DefaultPortConfig, sw.uplinks)
	m.policy = cfg.Policy
	return nil
}

func ovsReconfigureDVPortgroup(ctx *Context, this mo.Reference, req interface{}, _ ovsNext) soap.HasFault {
	pg := this.(*DistributedVirtualPortgroup)
	spec := &req.(*types.ReconfigureDVPortgroup_Task).Spec
	oldName := pg.Config.Name

	task := ovsRunTask(pg, "ReconfigureDVPortgroupTask", func() (types.AnyType, *ovsError) {
		ovsBindMu.Lock()
		defer ovsBindMu.Unlock()

		ovsState.Lock()
		sw, m := ovsFindPG(pg.Key)
		uplink := m != nil && m.uplink
		ovsState.Unlock()
		if m == nil {
			return nil, ovsErr(&types.NotFound{}, "port group %s is not on a known vSphere Distributed Switch", pg.Config.Name)
		}

		cfg, err := ovsNewPortgroupConfig(pg, spec, uplink)
		if err != nil {
			return nil, err
		}
		ovsState.Lock()
		err = sw.resize(m, &cfg)
		ovsState.Unlock()
		if err != nil {
			return nil, err
		}

		changes := []types.PropertyChange{{Name: "config", Val: cfg}}
		if cfg.Name != oldName {
			// Both the network's and the entity's name field are read
			// (entityName, property collectors).
			pg.Name = cfg.Name
			pg.Entity().Name = cfg.Name
			changes = append(changes, types.PropertyChange{Name: "name", Val: cfg.Name})
		}
		Map.Update(pg, changes)
		ovsPublishPG(ctx, pg.Self)
		return nil, nil
	})

	if pg.Config.Name != oldName && pg.Config.DistributedVirtualSwitch != nil {
		if dvs, ok := Map.Get(*pg.Config.DistributedVirtualSwitch).(*DistributedVirtualSwitch); ok {
			ctx.WithLock(dvs, func() {
				names := make([]string, 0, len(dvs.Summary.PortgroupName))
				for _, name := range dvs.Summary.PortgroupName {
					if name == oldName {
						name = pg.Config.Name
					}
					names = append(names, name)
				}
				Map.Update(dvs, []types.PropertyChange{{Name: "summary.portgroupName", Val: names}})
			})
		}
	}
	return &methods.ReconfigureDVPortgroup_TaskBody{Res: &types.ReconfigureDVPortgroup_TaskResponse{Returnval: task}}
}

func ovsDestroyDVPortgroup(ctx *Context, this mo.Reference, req interface{}, next ovsNext) soap.HasFault {
	pg := this.(*DistributedVirtualPortgroup)

	ovsBindMu.Lock()
	defer ovsBindMu.Unlock()

	ovsState.Lock()
	var err *ovsError
	if sw, m := ovsFindPG(pg.Key); m != nil {
		connected := 0
		for _, key := range m.ports {
			if p := sw.ports[key]; p != nil && p.nic != nil {
				connected++
			}
		}
		switch {
		case m.uplink:
			err = ovsErr(&types.NotSupported{}, "uplink port group %s goes away with its switch only", m.name)
		case connected > 0 || len(m.vms) > 0:
			err = ovsErr(&types.ResourceInUse{Type: "DistributedVirtualPortgroup", Name: m.name},
				"port group %s is in use: %d VMs have NICs on it, %d ports are connected", m.name, len(m.vms), connected)
		}
	}
	ovsState.Unlock()
	if err != nil {
		task := ovsRunTask(pg, "DestroyTask", func() (types.AnyType, *ovsError) { return nil, err })
		return &methods.Destroy_TaskBody{Res: &types.Destroy_TaskResponse{Returnval: task}}
	}

	res := next()
	if Map.Get(pg.Self) == nil {
		ovsState.Lock()
		if sw, m := ovsFindPG(pg.Key); m != nil {
			for _, key := range append([]string(nil), m.ports...) {
				sw.removePort(key)
			}
			delete(sw.pgs, pg.Key)
		}
		ovsState.Unlock()
	}
	return res
}
