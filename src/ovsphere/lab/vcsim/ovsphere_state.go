package simulator

// The stock simulator keeps no distributed ports: FetchDVPorts invents them
// from the port groups on every call. ovsphere keeps real ones here, one table
// per switch, with the ports' own settings, their connectees and a mirror of
// each port group's default setting and policy (so that reading a port never
// has to lock its port group).
//
// Locks, always taken in this order, never the other way round:
//  1. the object the SOAP call targets (taken by the dispatcher);
//  2. ovsBindMu, held by calls that bind VM NICs to ports or change which
//     ports exist, from their check to their last change;
//  3. other objects, one at a time (a new VM, a port group, a host);
//  4. ovsState, held briefly, with no other lock taken inside it.
// Registry.WithLock is not reentrant: code running for a call uses
// ctx.WithLock, which skips the lock the dispatcher already holds.

import (
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/vmware/govmomi/vim25/types"
)

const (
	ovsEarlyBinding = string(types.DistributedVirtualPortgroupPortgroupTypeEarlyBinding)
	ovsLateBinding  = string(types.DistributedVirtualPortgroupPortgroupTypeLateBinding)
	ovsEphemeral    = string(types.DistributedVirtualPortgroupPortgroupTypeEphemeral)
	// An autoExpand ("elastic") port group grows by eight ports when full.
	ovsExpandStep = 8
	// Ports a proxy switch offers on each host (HostProxySwitch.numPorts).
	ovsProxyPorts = 512
)

type ovsNic struct {
	vm  types.ManagedObjectReference
	key int32
}

type ovsPort struct {
	key    string
	pg     string
	uplink bool
	host   *types.ManagedObjectReference
	name   string
	desc   string

	version int
	// The port's own settings; nil means inherited from its port group.
	vlan        types.BaseVmwareDistributedVirtualSwitchVlanSpec
	promiscuous *bool
	forged      *bool
	macChanges  *bool
	blocked     *bool

	nic     *ovsNic
	mac     string
	cookie  int32
	changed time.Time
}

type ovsPortgroup struct {
	ref        types.ManagedObjectReference
	key        string
	name       string
	kind       string
	autoExpand bool
	uplink     bool
	setting    *types.VMwareDVSPortSetting
	policy     types.BaseDVPortgroupPolicy
	ports      []string
	vms        map[types.ManagedObjectReference]int
	// Ports before index hint are taken: binding thousands of NICs in a
	// row must not rescan them every time.
	hint int
}

func (pg *ovsPortgroup) static() bool {
	return pg.kind == ovsEarlyBinding || pg.kind == ovsLateBinding
}

type ovsSwitch struct {
	ref      types.ManagedObjectReference
	uuid     string
	name     string
	next     int
	ports    map[string]*ovsPort
	pgs      map[string]*ovsPortgroup
	nics     map[ovsNic]*ovsPort
	byVM     map[types.ManagedObjectReference]map[*ovsPort]bool
	uplinks  []string
	uplinkPG string
	members  []types.ManagedObjectReference
	mtu      int32
}

var ovsState = struct {
	sync.Mutex
	switches map[types.ManagedObjectReference]*ovsSwitch
	cookie   int32
}{switches: make(map[types.ManagedObjectReference]*ovsSwitch)}

var ovsBindMu sync.Mutex

func ovsSwitchOf(ref types.ManagedObjectReference) *ovsSwitch {
	return ovsState.switches[ref]
}

func ovsSwitchByUUID(uuid string) *ovsSwitch {
	for _, sw := range ovsState.switches {
		if sw.uuid == uuid {
			return sw
		}
	}
	return nil
}

func ovsFindPG(key string) (*ovsSwitch, *ovsPortgroup) {
	for _, sw := range ovsState.switches {
		if pg, ok := sw.pgs[key]; ok {
			return sw, pg
		}
	}
	return nil, nil
}

func (sw *ovsSwitch) newPort(pg *ovsPortgroup) *ovsPort {
	for {
		key := strconv.Itoa(sw.next)
		sw.next++
		if _, taken := sw.ports[key]; !taken {
			p := &ovsPort{key: key, pg: pg.key, uplink: pg.uplink, changed: time.Now()}
			sw.ports[key] = p
			pg.ports = append(pg.ports, key)
			return p
		}
	}
}

func (sw *ovsSwitch) addPorts(pg *ovsPortgroup, n int) {
	for i := 0; i < n; i++ {
		sw.newPort(pg)
	}
}

func (sw *ovsSwitch) removePort(key string) {
	p := sw.ports[key]
	if p == nil {
		return
	}
	sw.release(p)
	delete(sw.ports, key)
	if pg := sw.pgs[p.pg]; pg != nil {
		for i, k := range pg.ports {
			if k == key {
				pg.ports = append(pg.ports[:i:i], pg.ports[i+1:]...)
				break
			}
		}
	}
}

func (sw *ovsSwitch) freePorts(pg *ovsPortgroup) []*ovsPort {
	var free []*ovsPort
	for _, key := range pg.ports {
		if p := sw.ports[key]; p != nil && p.nic == nil && !p.uplink {
			free = append(free, p)
		}
	}
	return free
}

// firstFree returns the free port with the lowest index, nil if none.
func (sw *ovsSwitch) firstFree(pg *ovsPortgroup) *ovsPort {
	for i := pg.hint; i < len(pg.ports); i++ {
		if p := sw.ports[pg.ports[i]]; p != nil && p.nic == nil && !p.uplink {
			pg.hint = i
			return p
		}
	}
	pg.hint = len(pg.ports)
	return nil
}

func (sw *ovsSwitch) portsOf(vm types.ManagedObjectReference) []*ovsPort {
	var out []*ovsPort
	for p := range sw.byVM[vm] {
		out = append(out, p)
	}
	return out
}

func (sw *ovsSwitch) connect(p *ovsPort, nic ovsNic, host *types.ManagedObjectReference, mac string) {
	ovsState.cookie++
	p.nic = &nic
	p.host = host
	p.mac = mac
	p.cookie = ovsState.cookie
	p.changed = time.Now()
	sw.nics[nic] = p
	if sw.byVM[nic.vm] == nil {
		sw.byVM[nic.vm] = make(map[*ovsPort]bool)
	}
	sw.byVM[nic.vm][p] = true
}

func (sw *ovsSwitch) release(p *ovsPort) {
	if p.nic == nil {
		return
	}
	delete(sw.nics, *p.nic)
	if ports := sw.byVM[p.nic.vm]; ports != nil {
		delete(ports, p)
		if len(ports) == 0 {
			delete(sw.byVM, p.nic.vm)
		}
	}
	if pg := sw.pgs[p.pg]; pg != nil {
		pg.hint = 0
	}
	if !p.uplink {
		p.host = nil
	}
	p.nic = nil
	p.mac = ""
	p.cookie = 0
	p.changed = time.Now()
}

// ovsMirror records a port group's configuration (it must not change while
// this runs: the caller holds its lock or created it). A port group seen for
// the first time gets numPorts ports.
func (sw *ovsSwitch) mirror(pg *DistributedVirtualPortgroup, uplink bool) *ovsPortgroup {
	m, known := sw.pgs[pg.Key]
	if !known {
		m = &ovsPortgroup{ref: pg.Self, key: pg.Key, vms: make(map[types.ManagedObjectReference]int)}
		sw.pgs[pg.Key] = m
	}
	m.name = pg.Config.Name
	m.kind = pg.Config.Type
	m.autoExpand = pg.Config.AutoExpand != nil && *pg.Config.AutoExpand
	m.uplink = uplink
	m.setting = ovsFillPortSetting(pg.Config.DefaultPortConfig, sw.uplinks)
	m.policy = pg.Config.Policy
	if !known && !uplink {
		sw.addPorts(m, int(pg.Config.NumPorts))
	}
	return m
}

func ovsSortKeys(keys []string) {
	sort.Slice(keys, func(i, j int) bool {
		a, errA := strconv.Atoi(keys[i])
		b, errB := strconv.Atoi(keys[j])
		if errA == nil && errB == nil {
			return a < b
		}
		return keys[i] < keys[j]
	})
}

// ovsPublishPG copies the ports and VMs of a port group from ovsState to the
// managed object, where property collectors see them.
func ovsPublishPG(ctx *Context, ref types.ManagedObjectReference) {
	pg, ok := Map.Get(ref).(*DistributedVirtualPortgroup)
	if !ok {
		return
	}
	ctx.WithLock(pg, func() {
		ovsState.Lock()
		_, m := ovsFindPG(pg.Key)
		if m == nil {
			ovsState.Unlock()
			return
		}
		keys := append([]string(nil), m.ports...)
		var vms []types.ManagedObjectReference
		for vm := range m.vms {
			vms = append(vms, vm)
		}
		uplink := m.uplink
		ovsState.Unlock()

		sort.Slice(vms, func(i, j int) bool { return vms[i].Value < vms[j].Value })
		Map.Update(pg, []types.PropertyChange{
			{Name: "portKeys", Val: keys},
			{Name: "vm", Val: vms},
			{Name: "config.numPorts", Val: int32(len(keys))},
			{Name: "config.uplink", Val: uplink},
		})
	})
}

func ovsPublishPGs(ctx *Context, refs []types.ManagedObjectReference) {
	for _, ref := range refs {
		ovsPublishPG(ctx, ref)
	}
}
