package simulator

// Model.Create builds the inventory through the in-process client, which
// bypasses ovsphere's dispatcher: its port groups have no type and no ports,
// its VMs' NICs no ports, its switches no uplink ports. OvsphereSetup brings
// that inventory to what vCenter would show, before the server starts.

import (
	"context"
	"os"
	"sort"
	"time"

	"github.com/vmware/govmomi/vim25/types"
)

// OvsphereOptions are the simulator's behaviours that are not inventory
// counts.
type OvsphereOptions struct {
	// Precopy is how long a vMotion's memory pre-copy lasts, between
	// VmBeingHotMigratedEvent and the switch-over.
	Precopy time.Duration
}

// ovsModelPorts is the size of the model's own port groups; they grow on
// demand (autoExpand), like port groups made in the vSphere Client.
const ovsModelPorts = 8

// OvsphereSetup must run once, after Model.Create and before OvsphereServe.
func OvsphereSetup(opts OvsphereOptions) {
	ovsPrecopy = opts.Precopy
	ovsInstallTemplates()
	ctx := &Context{Context: context.Background(), Session: internalContext.Session, Map: Map}

	var switches []*DistributedVirtualSwitch
	for _, kind := range []string{"DistributedVirtualSwitch", "VmwareDistributedVirtualSwitch"} {
		for _, e := range Map.All(kind) {
			if dvs, ok := e.(*DistributedVirtualSwitch); ok {
				switches = append(switches, dvs)
			}
		}
	}
	for _, dvs := range switches {
		Map.WithLock(dvs, func() {
			uplink := ovsUplinkPortgroup(ctx, dvs)
			names := ovsUplinkNames(dvs.Config.GetDVSConfigInfo().UplinkPortPolicy)
			for _, ref := range dvs.Portgroup {
				pg, ok := Map.Get(ref).(*DistributedVirtualPortgroup)
				if !ok || pg.Config.Type != "" {
					continue
				}
				Map.WithLock(pg, func() {
					cfg := pg.Config
					cfg.Type = ovsEarlyBinding
					cfg.DefaultPortConfig = ovsFillPortSetting(cfg.DefaultPortConfig, names)
					if cfg.ConfigVersion == "" {
						cfg.ConfigVersion = "0"
					}
					if uplink == nil || pg.Self != uplink.Self {
						cfg.AutoExpand = types.NewBool(true)
						if cfg.NumPorts < ovsModelPorts {
							cfg.NumPorts = ovsModelPorts
						}
					}
					Map.Update(pg, []types.PropertyChange{{Name: "config", Val: cfg}})
				})
			}
			ovsSyncSwitch(ctx, dvs)
		})
	}

	var vms []*VirtualMachine
	for _, e := range Map.All("VirtualMachine") {
		if vm, ok := e.(*VirtualMachine); ok {
			vms = append(vms, vm)
		}
	}
	// Sorted, so that the same model gets the same MACs and ports every time.
	sort.Slice(vms, func(i, j int) bool { return ovsRefLess(vms[i].Self, vms[j].Self) })
	touched := make(map[types.ManagedObjectReference]bool)
	for _, vm := range vms {
		Map.WithLock(vm, func() {
			ovsRenewMACs(vm)
			for _, ref := range ovsReconcileVM(vm) {
				touched[ref] = true
			}
		})
	}
	ovsPublishPGs(ctx, ovsRefs(touched))
}

// ovsRefLess orders "vm-9" before "vm-10".
func ovsRefLess(a, b types.ManagedObjectReference) bool {
	if len(a.Value) != len(b.Value) {
		return len(a.Value) < len(b.Value)
	}
	return a.Value < b.Value
}

// OvsphereRemove deletes the model's datastore directories. Model.Remove
// would also stop VM containers (ovsphere runs none) and walks the registry
// without its lock while requests may still be running.
func OvsphereRemove(m *Model) {
	for _, dir := range m.dirs {
		_ = os.RemoveAll(dir)
	}
}
