package simulator

// vMotion as ovsphere sees it on vCenter: the task is running at once, a
// VmBeingHotMigratedEvent names the destination before anything moves, the
// memory pre-copy takes a while, then the VM changes hosts in one step and
// VmMigratedEvent follows. The stock simulator has no MigrateVM_Task, moves
// the VM inside RelocateVM_Task without an event and leaves the hosts' vm
// lists stale. The VM keeps its ports (they belong to the switch, not to a
// host), so its VLANs travel with it.

import (
	"sync"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func init() {
	ovsRegister((*VirtualMachine)(nil), "MigrateVM_Task", ovsMigrateVM)
	ovsRegister((*VirtualMachine)(nil), "RelocateVM_Task", ovsRelocateVM)
}

// ovsPrecopy is set once at startup, before the server runs.
var ovsPrecopy = time.Second

// VMs with a vMotion under way; a second one is refused.
var ovsMigrating = struct {
	sync.Mutex
	vms map[types.ManagedObjectReference]types.ManagedObjectReference
}{vms: make(map[types.ManagedObjectReference]types.ManagedObjectReference)}

type ovsMove struct {
	vm        *VirtualMachine
	task      *Task
	session   *Session
	src, dest types.ManagedObjectReference
	pool      *types.ManagedObjectReference
	datastore *types.ManagedObjectReference
}

func ovsMigrateVM(ctx *Context, this mo.Reference, req interface{}, _ ovsNext) soap.HasFault {
	vm := this.(*VirtualMachine)
	r := req.(*types.MigrateVM_Task)
	m := &ovsMove{vm: vm, task: ovsStartTask(vm, "MigrateVMTask"), session: ctx.Session, pool: r.Pool}
	var err *ovsError
	switch {
	case r.State != "" && r.State != vm.Runtime.PowerState:
		err = ovsErr(&types.InvalidPowerState{RequestedState: r.State, ExistingState: vm.Runtime.PowerState},
			"%s is %s, not %s", vm.Name, vm.Runtime.PowerState, r.State)
	case r.Host != nil:
		m.dest = *r.Host
	case r.Pool != nil:
		m.dest, err = ovsPickHost(vm, *r.Pool)
	default:
		err = ovsErr(&types.InvalidArgument{InvalidProperty: "host"}, "MigrateVM_Task needs a host or a resource pool")
	}
	m.start(ctx, err)
	return &methods.MigrateVM_TaskBody{Res: &types.MigrateVM_TaskResponse{Returnval: m.task.Self}}
}

func ovsRelocateVM(ctx *Context, this mo.Reference, req interface{}, next ovsNext) soap.HasFault {
	vm := this.(*VirtualMachine)
	r := req.(*types.RelocateVM_Task)
	if r.Spec.Host == nil || vm.Runtime.Host == nil || *r.Spec.Host == *vm.Runtime.Host {
		return next()
	}
	m := &ovsMove{
		vm:        vm,
		task:      ovsStartTask(vm, "RelocateVMTask"),
		session:   ctx.Session,
		dest:      *r.Spec.Host,
		pool:      r.Spec.Pool,
		datastore: r.Spec.Datastore,
	}
	m.start(ctx, nil)
	return &methods.RelocateVM_TaskBody{Res: &types.RelocateVM_TaskResponse{Returnval: m.task.Self}}
}

// ovsPickHost chooses a destination in a pool's cluster, as DRS would when
// MigrateVM_Task names only a pool.
func ovsPickHost(vm *VirtualMachine, pool types.ManagedObjectReference) (types.ManagedObjectReference, *ovsError) {
	rp, ok := Map.Get(pool).(*ResourcePool)
	if !ok {
		return pool, ovsErr(&types.ManagedObjectNotFound{Obj: pool}, "resource pool %s does not exist", pool.Value)
	}
	var hosts []types.ManagedObjectReference
	switch cr := Map.Get(rp.Owner).(type) {
	case *ClusterComputeResource:
		hosts = cr.Host
	case *mo.ComputeResource:
		hosts = cr.Host
	}
	for _, h := range hosts {
		if vm.Runtime.Host != nil && h == *vm.Runtime.Host {
			continue
		}
		if ovsCheckDestination(vm, h) == nil {
			return h, nil
		}
	}
	return pool, ovsErr(&types.InvalidArgument{InvalidProperty: "pool"}, "no host of resource pool %s can take %s", rp.Name, vm.Name)
}

// ovsCheckDestination says why a VM cannot move to host, nil if it can. The
// caller holds the VM's lock.
func ovsCheckDestination(vm *VirtualMachine, ref types.ManagedObjectReference) *ovsError {
	host, ok := Map.Get(ref).(*HostSystem)
	if !ok {
		return ovsErr(&types.ManagedObjectNotFound{Obj: ref}, "destination host %s does not exist", ref.Value)
	}
	var bad *ovsError
	Map.WithLock(host, func() {
		switch {
		case host.Runtime.InMaintenanceMode:
			bad = ovsErr(&types.InvalidHostState{Host: &host.Self}, "destination host %s is in maintenance mode", host.Name)
		case host.Runtime.ConnectionState != types.HostSystemConnectionStateConnected:
			bad = ovsErr(&types.InvalidHostState{Host: &host.Self}, "destination host %s is %s", host.Name, host.Runtime.ConnectionState)
		}
	})
	if bad != nil {
		return bad
	}
	devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
	ovsState.Lock()
	defer ovsState.Unlock()
	for _, n := range ovsDVNics(vm.Config.Hardware.Device) {
		sw := ovsSwitchByUUID(n.uuid)
		if sw == nil {
			continue
		}
		member := false
		for _, h := range sw.members {
			member = member || h == ref
		}
		if member {
			continue
		}
		label := devices.Name(vm.Config.Hardware.Device[n.index])
		pgName := n.pgKey
		var network *types.ManagedObjectReference
		if pg := sw.pgs[n.pgKey]; pg != nil {
			pgName = pg.name
			network = &pg.ref
		}
		return ovsErr(&types.CannotAccessNetwork{
			CannotAccessVmDevice: types.CannotAccessVmDevice{Device: label, Backing: pgName, Connected: true},
			Network:              network,
		}, "network interface %s of %s uses port group %s of vSphere Distributed Switch %s, which host %s is not a member of",
			label, vm.Name, pgName, sw.name, host.Name)
	}
	return nil
}

func ovsHostArgument(ref types.ManagedObjectReference) types.HostEventArgument {
	arg := types.HostEventArgument{Host: ref, EntityEventArgument: types.EntityEventArgument{Name: ref.Value}}
	if host, ok := Map.Get(ref).(*HostSystem); ok {
		arg.Name = host.Name
	}
	return arg
}

// event builds the common part of the migration events, at host.
func (m *ovsMove) event(host types.ManagedObjectReference) types.VmEvent {
	e := types.VmEvent{Event: types.Event{
		Vm: &types.VmEventArgument{
			EntityEventArgument: types.EntityEventArgument{Name: m.vm.Name},
			Vm:                  m.vm.Self,
		},
	}}
	if h, ok := Map.Get(host).(*HostSystem); ok {
		arg := ovsHostArgument(host)
		e.Host = &arg
		e.ComputeResource = h.eventArgumentParent()
		e.Datacenter = datacenterEventArgument(h)
	}
	return e
}

// start runs with the VM locked by the dispatcher; err is a fault found
// while reading the request.
func (m *ovsMove) start(ctx *Context, err *ovsError) {
	if m.vm.Runtime.Host == nil {
		ovsFinishTask(m.task, nil, ovsErr(&types.InvalidState{}, "%s is on no host", m.vm.Name))
		return
	}
	m.src = *m.vm.Runtime.Host
	if err == nil {
		err = ovsCheckDestination(m.vm, m.dest)
	}
	if err == nil && m.pool != nil {
		err = ovsCheckPool(*m.pool, m.dest)
	}
	if err == nil {
		ovsMigrating.Lock()
		if task, busy := ovsMigrating.vms[m.vm.Self]; busy {
			err = ovsErr(&types.TaskInProgress{Task: task}, "%s is already being migrated by %s", m.vm.Name, task.Value)
		} else {
			ovsMigrating.vms[m.vm.Self] = m.task.Self
		}
		ovsMigrating.Unlock()
	}
	if err != nil {
		m.fail(err)
		return
	}
	dest := ovsHostArgument(m.dest)
	var destDC *types.DatacenterEventArgument
	if h, ok := Map.Get(m.dest).(*HostSystem); ok {
		destDC = datacenterEventArgument(h)
	}
	if m.vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn {
		ctx.postEvent(&types.VmBeingHotMigratedEvent{VmEvent: m.event(m.src), DestHost: dest, DestDatacenter: destDC})
	} else {
		ctx.postEvent(&types.VmBeingMigratedEvent{VmEvent: m.event(m.src), DestHost: dest, DestDatacenter: destDC})
	}
	go m.run()
}

func ovsCheckPool(pool, host types.ManagedObjectReference) *ovsError {
	rp, ok := Map.Get(pool).(*ResourcePool)
	if !ok {
		return ovsErr(&types.ManagedObjectNotFound{Obj: pool}, "resource pool %s does not exist", pool.Value)
	}
	var hosts []types.ManagedObjectReference
	switch cr := Map.Get(rp.Owner).(type) {
	case *ClusterComputeResource:
		hosts = cr.Host
	case *mo.ComputeResource:
		hosts = cr.Host
	}
	for _, h := range hosts {
		if h == host {
			return nil
		}
	}
	return ovsErr(&types.InvalidArgument{InvalidProperty: "pool"}, "host %s is not in the compute resource of resource pool %s", host.Value, rp.Name)
}

// fail posts VmFailedMigrateEvent and fails the task; nothing has changed.
func (m *ovsMove) fail(err *ovsError) {
	ovsPostEvents(m.session, &types.VmFailedMigrateEvent{
		VmEvent:  m.event(m.src),
		DestHost: ovsHostArgument(m.dest),
		Reason:   err.localized(),
	})
	ovsFinishTask(m.task, nil, err)
}

func (m *ovsMove) run() {
	time.Sleep(ovsPrecopy)
	defer func() {
		ovsMigrating.Lock()
		delete(ovsMigrating.vms, m.vm.Self)
		ovsMigrating.Unlock()
	}()

	var err *ovsError
	var done types.BaseEvent
	Map.WithLock(m.vm, func() {
		if Map.Get(m.vm.Self) == nil {
			err = ovsErr(&types.ManagedObjectNotFound{Obj: m.vm.Self}, "%s was removed during its migration", m.vm.Name)
			return
		}
		if err = ovsCheckDestination(m.vm, m.dest); err != nil {
			return
		}
		m.switchOver()
		done = &types.VmMigratedEvent{VmEvent: m.event(m.dest), SourceHost: ovsHostArgument(m.src)}
	})
	if err != nil {
		m.fail(err)
		return
	}
	ovsPostEvents(m.session, done)
	ovsFinishTask(m.task, nil, nil)
}

// switchOver moves the VM; the caller holds the VM's lock.
func (m *ovsMove) switchOver() {
	dest := m.dest
	changes := []types.PropertyChange{
		{Name: "runtime.host", Val: dest},
		{Name: "summary.runtime.host", Val: dest},
	}
	oldPool := m.vm.ResourcePool
	if m.pool != nil && (oldPool == nil || *oldPool != *m.pool) {
		changes = append(changes, types.PropertyChange{Name: "resourcePool", Val: *m.pool})
	}
	if m.datastore != nil {
		changes = append(changes, types.PropertyChange{Name: "datastore", Val: []types.ManagedObjectReference{*m.datastore}})
	}
	Map.Update(m.vm, changes)

	ovsMoveRef := func(obj mo.Reference, field string, list func() []types.ManagedObjectReference, add bool) {
		Map.WithLock(obj, func() {
			var out []types.ManagedObjectReference
			for _, ref := range list() {
				if ref != m.vm.Self {
					out = append(out, ref)
				}
			}
			if add {
				out = append(out, m.vm.Self)
			}
			Map.Update(obj, []types.PropertyChange{{Name: field, Val: out}})
		})
	}
	if src, ok := Map.Get(m.src).(*HostSystem); ok {
		ovsMoveRef(src, "vm", func() []types.ManagedObjectReference { return src.Vm }, false)
	}
	if dst, ok := Map.Get(m.dest).(*HostSystem); ok {
		ovsMoveRef(dst, "vm", func() []types.ManagedObjectReference { return dst.Vm }, true)
	}
	if m.pool != nil && (oldPool == nil || *oldPool != *m.pool) {
		if oldPool != nil {
			if rp, ok := Map.Get(*oldPool).(*ResourcePool); ok {
				ovsMoveRef(rp, "vm", func() []types.ManagedObjectReference { return rp.Vm }, false)
			}
		}
		if rp, ok := Map.Get(*m.pool).(*ResourcePool); ok {
			ovsMoveRef(rp, "vm", func() []types.ManagedObjectReference { return rp.Vm }, true)
		}
	}

	ovsState.Lock()
	for _, sw := range ovsState.switches {
		for _, p := range sw.portsOf(m.vm.Self) {
			p.host = &dest
		}
	}
	ovsState.Unlock()
}
