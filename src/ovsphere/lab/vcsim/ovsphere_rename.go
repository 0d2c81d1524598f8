package simulator

// vCenter renames any managed entity; the stock simulator implements
// Rename_Task for folders, datacenters, clusters and VMs only.  The lab names
// its ESX hosts and vDS after its topology, so hosts and switches get it too,
// with the copies of the name vCenter keeps in their summaries.

import (
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func init() {
	ovsRegister((*HostSystem)(nil), "Rename_Task", ovsRename)
	ovsRegister((*DistributedVirtualSwitch)(nil), "Rename_Task", ovsRename)
}

func ovsRename(ctx *Context, this mo.Reference, req interface{}, _ ovsNext) soap.HasFault {
	body := RenameTask(this.(mo.Entity), req.(*types.Rename_Task))
	name := req.(*types.Rename_Task).NewName
	switch obj := this.(type) {
	case *HostSystem:
		if obj.Name == name {
			Map.Update(obj, []types.PropertyChange{{Name: "summary.config.name", Val: name}})
		}
	case *DistributedVirtualSwitch:
		if obj.Name == name {
			Map.Update(obj, []types.PropertyChange{{Name: "summary.name", Val: name}})
			// The member hosts' proxySwitch entries carry the switch's name too.
			ovsSyncSwitch(ctx, obj)
		}
	}
	return body
}
