package simulator

// Static binding, as vCenter does it: a NIC on an earlyBinding port group
// holds one port of it (the port the spec names, if free, else the first free
// one) from the moment it is configured until it is removed, moved elsewhere
// or its VM destroyed. The stock simulator never gives a NIC a port.
//
// The port group must have room before the stock method runs (a stock task
// cannot fail after it succeeded), so each hook checks the device changes
// first, lets the stock method configure the devices, then binds what the VM
// actually has. ovsBindMu keeps another binder from taking the last free port
// in between.

import (
	"log"
	"reflect"
	"sort"

	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func init() {
	ovsRegister((*Folder)(nil), "CreateVM_Task", ovsCreateVM)
	ovsRegister((*VirtualMachine)(nil), "ReconfigVM_Task", ovsReconfigVM)
	ovsRegister((*VirtualMachine)(nil), "CloneVM_Task", ovsCloneVM)
	ovsRegister((*VirtualMachine)(nil), "Destroy_Task", ovsDestroyVM)
	ovsRegister((*VirtualMachine)(nil), "UnregisterVM", ovsUnregisterVM)
}

// ovsVNic is a VM NIC backed by a distributed port group.
type ovsVNic struct {
	index   int
	key     int32
	uuid    string
	pgKey   string
	portKey string
	mac     string
}

func ovsDVNics(devices []types.BaseVirtualDevice) []ovsVNic {
	var out []ovsVNic
	for i, d := range devices {
		card, ok := d.(types.BaseVirtualEthernetCard)
		if !ok {
			continue
		}
		c := card.GetVirtualEthernetCard()
		b, ok := c.Backing.(*types.VirtualEthernetCardDistributedVirtualPortBackingInfo)
		if !ok {
			continue
		}
		out = append(out, ovsVNic{i, c.Key, b.Port.SwitchUuid, b.Port.PortgroupKey, b.Port.PortKey, c.MacAddress})
	}
	return out
}

type ovsBound struct {
	key    string
	cookie int32
}

func ovsRefs(set map[types.ManagedObjectReference]bool) []types.ManagedObjectReference {
	out := make([]types.ManagedObjectReference, 0, len(set))
	for ref := range set {
		out = append(out, ref)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Value < out[j].Value })
	return out
}

// ovsReconcileVM makes the ports match the VM's NICs: releases the ports of
// NICs that are gone or moved, binds NICs that have no port, writes each
// port key into its NIC's backing. The caller holds the VM's lock and
// ovsBindMu; the port groups returned must be published.
func ovsReconcileVM(vm *VirtualMachine) []types.ManagedObjectReference {
	nics := ovsDVNics(vm.Config.Hardware.Device)
	var host *types.ManagedObjectReference
	if vm.Runtime.Host != nil {
		h := *vm.Runtime.Host
		host = &h
	}
	touched := make(map[types.ManagedObjectReference]bool)
	assigned := make(map[int]ovsBound)

	ovsState.Lock()
	for _, sw := range ovsState.switches {
		for _, p := range sw.portsOf(vm.Self) {
			keep := false
			for _, n := range nics {
				if n.key == p.nic.key && n.uuid == sw.uuid && n.pgKey == p.pg && (n.portKey == "" || n.portKey == p.key) {
					keep = true
					break
				}
			}
			if !keep {
				sw.release(p)
				if pg := sw.pgs[p.pg]; pg != nil {
					touched[pg.ref] = true
				}
			}
		}
	}

	counts := make(map[*ovsPortgroup]int)
	for _, n := range nics {
		sw := ovsSwitchByUUID(n.uuid)
		if sw == nil {
			continue
		}
		pg := sw.pgs[n.pgKey]
		if pg == nil {
			continue
		}
		counts[pg]++
		if !pg.static() {
			continue
		}
		nic := ovsNic{vm.Self, n.key}
		p := sw.nics[nic]
		if p == nil {
			if c := sw.ports[n.portKey]; n.portKey != "" && c != nil && c.pg == pg.key && c.nic == nil && !c.uplink {
				p = c
			}
			if p == nil {
				p = sw.firstFree(pg)
				if p == nil && pg.autoExpand {
					sw.addPorts(pg, ovsExpandStep)
					p = sw.firstFree(pg)
				}
				if p == nil {
					log.Printf("ovsphere: %s NIC %d stays unbound: port group %s has no free port", vm.Name, n.key, pg.name)
					continue
				}
			}
			sw.connect(p, nic, host, n.mac)
			touched[pg.ref] = true
		} else {
			p.host = host
			p.mac = n.mac
		}
		assigned[n.index] = ovsBound{p.key, p.cookie}
	}

	for _, sw := range ovsState.switches {
		for _, pg := range sw.pgs {
			had, has := pg.vms[vm.Self], counts[pg]
			if has == 0 {
				delete(pg.vms, vm.Self)
			} else {
				pg.vms[vm.Self] = has
			}
			if (had == 0) != (has == 0) {
				touched[pg.ref] = true
			}
		}
	}
	ovsState.Unlock()

	ovsWritePortKeys(vm, assigned)
	return ovsRefs(touched)
}

// ovsWritePortKeys puts the bound port keys into the NICs' backings. The
// device and backing are copied, never changed in place: the model's VMs were
// created from one shared NIC object.
func ovsWritePortKeys(vm *VirtualMachine, assigned map[int]ovsBound) {
	devices := append([]types.BaseVirtualDevice(nil), vm.Config.Hardware.Device...)
	changed := false
	for index, bound := range assigned {
		card := devices[index].(types.BaseVirtualEthernetCard)
		backing := card.GetVirtualEthernetCard().Backing.(*types.VirtualEthernetCardDistributedVirtualPortBackingInfo)
		if backing.Port.PortKey == bound.key && backing.Port.ConnectionCookie == bound.cookie {
			continue
		}
		nb := *backing
		nb.Port.PortKey = bound.key
		nb.Port.ConnectionCookie = bound.cookie
		v := reflect.ValueOf(devices[index]).Elem()
		cp := reflect.New(v.Type())
		cp.Elem().Set(v)
		device := cp.Interface().(types.BaseVirtualDevice)
		device.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard().Backing = &nb
		devices[index] = device
		changed = true
	}
	if changed {
		Map.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: devices}})
	}
}

// ovsForgetVM releases every port of a VM that no longer exists.
func ovsForgetVM(ref types.ManagedObjectReference) []types.ManagedObjectReference {
	touched := make(map[types.ManagedObjectReference]bool)
	ovsState.Lock()
	for _, sw := range ovsState.switches {
		for _, p := range sw.portsOf(ref) {
			sw.release(p)
			if pg := sw.pgs[p.pg]; pg != nil {
				touched[pg.ref] = true
			}
		}
		for _, pg := range sw.pgs {
			if _, ok := pg.vms[ref]; ok {
				delete(pg.vms, ref)
				touched[pg.ref] = true
			}
		}
	}
	ovsState.Unlock()
	return ovsRefs(touched)
}

func ovsNoFreePort(pg *ovsPortgroup, need, free int) *ovsError {
	return ovsErr(&types.NotFound{},
		"port group %s has no free port for %d more NIC(s): %d of its %d ports are free and autoExpand is off; raise numPorts or turn autoExpand on",
		pg.name, need, free, len(pg.ports))
}

// ovsCheckDeviceChange refuses device changes that would need more ports
// than a static port group can give, or a port that is taken. vm is nil for
// a new VM. The caller holds ovsBindMu.
func ovsCheckDeviceChange(vm *types.ManagedObjectReference, changes []types.BaseVirtualDeviceConfigSpec) *ovsError {
	ovsState.Lock()
	defer ovsState.Unlock()

	need := make(map[*ovsPortgroup]int)
	freed := make(map[*ovsPortgroup]int)
	owner := make(map[*ovsPortgroup]*ovsSwitch)
	claimed := make(map[*ovsPort]bool)
	current := func(key int32) (*ovsSwitch, *ovsPort, *ovsPortgroup) {
		if vm == nil {
			return nil, nil, nil
		}
		for _, sw := range ovsState.switches {
			if p := sw.nics[ovsNic{*vm, key}]; p != nil {
				return sw, p, sw.pgs[p.pg]
			}
		}
		return nil, nil, nil
	}

	for i, change := range changes {
		spec := change.GetVirtualDeviceConfigSpec()
		card, ok := spec.Device.(types.BaseVirtualEthernetCard)
		if !ok {
			continue
		}
		c := card.GetVirtualEthernetCard()
		csw, cur, curPG := current(c.Key)
		release := func() {
			if curPG != nil {
				freed[curPG]++
				owner[curPG] = csw
			}
		}
		if spec.Operation == types.VirtualDeviceConfigSpecOperationRemove {
			release()
			continue
		}
		edit := spec.Operation == types.VirtualDeviceConfigSpecOperationEdit
		b, ok := c.Backing.(*types.VirtualEthernetCardDistributedVirtualPortBackingInfo)
		if !ok {
			if edit {
				release()
			}
			continue
		}
		sw := ovsSwitchByUUID(b.Port.SwitchUuid)
		if sw == nil {
			continue // the stock method refuses an unknown switch
		}
		pg := sw.pgs[b.Port.PortgroupKey]
		if pg == nil {
			return ovsErr(&types.NotFound{}, "deviceChange[%d]: port group %q does not exist on vSphere Distributed Switch %s",
				i, b.Port.PortgroupKey, sw.name)
		}
		if !pg.static() {
			if edit {
				release()
			}
			continue
		}
		if edit && cur != nil && cur.pg == pg.key && (b.Port.PortKey == "" || b.Port.PortKey == cur.key) {
			continue
		}
		if edit {
			release()
		}
		owner[pg] = sw
		if b.Port.PortKey == "" {
			need[pg]++
			continue
		}
		p := sw.ports[b.Port.PortKey]
		switch {
		case p == nil:
			return ovsErr(&types.NotFound{}, "deviceChange[%d]: port %s does not exist on vSphere Distributed Switch %s",
				i, b.Port.PortKey, sw.name)
		case p.pg != pg.key || p.uplink:
			return ovsErr(&types.InvalidArgument{InvalidProperty: "deviceChange.device.backing.port.portKey"},
				"deviceChange[%d]: port %s is not a port of port group %s", i, p.key, pg.name)
		case claimed[p] || (p.nic != nil && (vm == nil || p.nic.vm != *vm)):
			return ovsErr(&types.ResourceInUse{Type: "DistributedVirtualPort", Name: p.key},
				"deviceChange[%d]: port %s of port group %s is already connected", i, p.key, pg.name)
		}
		claimed[p] = true
	}

	for pg, n := range need {
		free := freed[pg]
		for _, p := range owner[pg].freePorts(pg) {
			if !claimed[p] {
				free++
			}
		}
		if n > free && !pg.autoExpand {
			return ovsNoFreePort(pg, n, free)
		}
	}
	return nil
}

// ovsCheckClone refuses a clone whose NICs would not find ports.
func ovsCheckClone(vm *VirtualMachine) *ovsError {
	ovsState.Lock()
	defer ovsState.Unlock()
	need := make(map[*ovsPortgroup]int)
	owner := make(map[*ovsPortgroup]*ovsSwitch)
	for _, n := range ovsDVNics(vm.Config.Hardware.Device) {
		if sw := ovsSwitchByUUID(n.uuid); sw != nil {
			if pg := sw.pgs[n.pgKey]; pg != nil && pg.static() {
				need[pg]++
				owner[pg] = sw
			}
		}
	}
	for pg, n := range need {
		if free := len(owner[pg].freePorts(pg)); !pg.autoExpand && free < n {
			return ovsNoFreePort(pg, n, free)
		}
	}
	return nil
}

func ovsCreateVM(ctx *Context, this mo.Reference, req interface{}, next ovsNext) soap.HasFault {
	r := req.(*types.CreateVM_Task)
	var touched []types.ManagedObjectReference
	res := func() soap.HasFault {
		ovsBindMu.Lock()
		defer ovsBindMu.Unlock()
		if err := ovsCheckDeviceChange(nil, r.Config.DeviceChange); err != nil {
			task := ovsRunTask(this, "CreateVMTask", func() (types.AnyType, *ovsError) { return nil, err })
			return &methods.CreateVM_TaskBody{Res: &types.CreateVM_TaskResponse{Returnval: task}}
		}
		ovsAssignMACs(r.Config.DeviceChange)
		res := next()
		if body, ok := res.(*methods.CreateVM_TaskBody); ok && body.Res != nil {
			if result, ok := ovsTaskDone(body.Res.Returnval); ok {
				if vm, ok := Map.Get(result.(types.ManagedObjectReference)).(*VirtualMachine); ok {
					Map.WithLock(vm, func() { touched = ovsReconcileVM(vm) })
				}
			}
		}
		return res
	}()
	ovsPublishPGs(ctx, touched)
	return res
}

func ovsReconfigVM(ctx *Context, this mo.Reference, req interface{}, next ovsNext) soap.HasFault {
	vm := this.(*VirtualMachine)
	r := req.(*types.ReconfigVM_Task)
	var touched []types.ManagedObjectReference
	res := func() soap.HasFault {
		ovsBindMu.Lock()
		defer ovsBindMu.Unlock()
		if err := ovsCheckDeviceChange(&vm.Self, r.Spec.DeviceChange); err != nil {
			task := ovsRunTask(vm, "ReconfigVMTask", func() (types.AnyType, *ovsError) { return nil, err })
			return &methods.ReconfigVM_TaskBody{Res: &types.ReconfigVM_TaskResponse{Returnval: task}}
		}
		ovsAssignMACs(r.Spec.DeviceChange)
		res := next()
		touched = ovsReconcileVM(vm)
		return res
	}()
	ovsPublishPGs(ctx, touched)
	return res
}

func ovsCloneVM(ctx *Context, this mo.Reference, req interface{}, next ovsNext) soap.HasFault {
	vm := this.(*VirtualMachine)
	var touched []types.ManagedObjectReference
	res := func() soap.HasFault {
		ovsBindMu.Lock()
		defer ovsBindMu.Unlock()
		if err := ovsCheckClone(vm); err != nil {
			task := ovsRunTask(vm, "CloneVMTask", func() (types.AnyType, *ovsError) { return nil, err })
			return &methods.CloneVM_TaskBody{Res: &types.CloneVM_TaskResponse{Returnval: task}}
		}
		res := next()
		if body, ok := res.(*methods.CloneVM_TaskBody); ok && body.Res != nil {
			if result, ok := ovsTaskDone(body.Res.Returnval); ok {
				if clone, ok := Map.Get(result.(types.ManagedObjectReference)).(*VirtualMachine); ok {
					Map.WithLock(clone, func() {
						ovsRenewMACs(clone)
						touched = ovsReconcileVM(clone)
					})
				}
			}
		}
		return res
	}()
	ovsPublishPGs(ctx, touched)
	return res
}

// ovsAfterRemoval settles the ports of a VM after a call that may have
// removed it from the inventory.
func ovsAfterRemoval(ctx *Context, vm *VirtualMachine, next ovsNext) soap.HasFault {
	var touched []types.ManagedObjectReference
	res := func() soap.HasFault {
		ovsBindMu.Lock()
		defer ovsBindMu.Unlock()
		res := next()
		if Map.Get(vm.Self) == nil {
			touched = ovsForgetVM(vm.Self)
		} else {
			touched = ovsReconcileVM(vm)
		}
		return res
	}()
	ovsPublishPGs(ctx, touched)
	return res
}

func ovsDestroyVM(ctx *Context, this mo.Reference, req interface{}, next ovsNext) soap.HasFault {
	return ovsAfterRemoval(ctx, this.(*VirtualMachine), next)
}

func ovsUnregisterVM(ctx *Context, this mo.Reference, req interface{}, next ovsNext) soap.HasFault {
	return ovsAfterRemoval(ctx, this.(*VirtualMachine), next)
}
