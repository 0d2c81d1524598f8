package simulator

// The stock simulator derives a NIC's MAC from three hex digits of the VM's
// UUID, so two VMs of a lab of a few dozen share a MAC more often than not;
// the model's VMs even share one NIC object, hence one MAC, and a clone keeps
// its source's MAC. ovsphere uses the MAC for OVN port security, so it must be
// unique, as vCenter makes it: generated MACs come from 00:50:56:80:00:00 up.

import (
	"fmt"
	"reflect"
	"sync"

	"github.com/vmware/govmomi/vim25/types"
)

var ovsMAC = struct {
	sync.Mutex
	next uint32
}{}

func ovsNewMAC() string {
	ovsMAC.Lock()
	defer ovsMAC.Unlock()
	n := 0x800000 + ovsMAC.next
	ovsMAC.next = (ovsMAC.next + 1) % 0x400000
	return fmt.Sprintf("00:50:56:%02x:%02x:%02x", byte(n>>16), byte(n>>8), byte(n))
}

// ovsAssignMACs gives the NICs a spec adds without a MAC a unique one before
// the stock method invents one.
func ovsAssignMACs(changes []types.BaseVirtualDeviceConfigSpec) {
	for _, change := range changes {
		spec := change.GetVirtualDeviceConfigSpec()
		if spec.Operation != types.VirtualDeviceConfigSpecOperationAdd {
			continue
		}
		card, ok := spec.Device.(types.BaseVirtualEthernetCard)
		if !ok {
			continue
		}
		c := card.GetVirtualEthernetCard()
		if c.MacAddress == "" && c.AddressType != string(types.VirtualEthernetCardMacTypeManual) {
			c.MacAddress = ovsNewMAC()
			c.AddressType = string(types.VirtualEthernetCardMacTypeAssigned)
		}
	}
}

// ovsRenewMACs gives every NIC of a VM a new unique MAC; the caller holds the
// VM's lock. Devices are copied, not changed in place (they may be shared).
func ovsRenewMACs(vm *VirtualMachine) {
	devices := append([]types.BaseVirtualDevice(nil), vm.Config.Hardware.Device...)
	renewed := make(map[int32]string)
	for i, d := range devices {
		if _, ok := d.(types.BaseVirtualEthernetCard); !ok {
			continue
		}
		v := reflect.ValueOf(d).Elem()
		cp := reflect.New(v.Type())
		cp.Elem().Set(v)
		device := cp.Interface().(types.BaseVirtualDevice)
		c := device.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
		c.MacAddress = ovsNewMAC()
		c.AddressType = string(types.VirtualEthernetCardMacTypeAssigned)
		renewed[c.Key] = c.MacAddress
		devices[i] = device
	}
	if len(renewed) == 0 {
		return
	}
	changes := []types.PropertyChange{{Name: "config.hardware.device", Val: devices}}
	if vm.Guest != nil {
		nets := append([]types.GuestNicInfo(nil), vm.Guest.Net...)
		for i := range nets {
			if mac, ok := renewed[nets[i].DeviceConfigId]; ok {
				nets[i].MacAddress = mac
			}
		}
		changes = append(changes, types.PropertyChange{Name: "guest.net", Val: nets})
	}
	Map.Update(vm, changes)
}
