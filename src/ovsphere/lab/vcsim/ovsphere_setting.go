package simulator

// Port settings follow vCenter's inheritance: a port group has a default
// setting, a port overrides some of its policies (inherited=false) and shows
// the rest from its port group, marked inherited=true. The stock simulator
// leaves a new port group's security policy and blocked flag unset and gives
// it a teaming policy without uplinks, unlike vCenter; ovsFillPortSetting puts
// vCenter's defaults where a spec leaves a policy out.

import (
	"fmt"
	"reflect"

	"github.com/vmware/govmomi/vim25/types"
)

var ovsDefaultUplinks = []string{"dvUplink1", "dvUplink2", "dvUplink3", "dvUplink4"}

func ovsBoolPolicy(v bool) *types.BoolPolicy {
	return &types.BoolPolicy{Value: types.NewBool(v)}
}

func ovsBoolOr(p *types.BoolPolicy, v bool) *types.BoolPolicy {
	if p == nil || p.Value == nil {
		return ovsBoolPolicy(v)
	}
	return p
}

// ovsFillPortSetting returns a copy of s with vCenter's defaults for a new
// port group where s has no policy.
func ovsFillPortSetting(s types.BaseDVPortSetting, uplinks []string) *types.VMwareDVSPortSetting {
	var out types.VMwareDVSPortSetting
	switch x := s.(type) {
	case *types.VMwareDVSPortSetting:
		out = *x
	case *types.DVPortSetting:
		out.DVPortSetting = *x
	}
	out.Blocked = ovsBoolOr(out.Blocked, false)
	if out.Vlan == nil {
		out.Vlan = &types.VmwareDistributedVirtualSwitchVlanIdSpec{VlanId: 0}
	}
	security := types.DVSSecurityPolicy{}
	if out.SecurityPolicy != nil {
		security = *out.SecurityPolicy
	}
	security.AllowPromiscuous = ovsBoolOr(security.AllowPromiscuous, false)
	security.MacChanges = ovsBoolOr(security.MacChanges, false)
	security.ForgedTransmits = ovsBoolOr(security.ForgedTransmits, false)
	out.SecurityPolicy = &security

	teaming := types.VmwareUplinkPortTeamingPolicy{
		Policy:         &types.StringPolicy{Value: "loadbalance_srcid"},
		ReversePolicy:  ovsBoolPolicy(true),
		NotifySwitches: ovsBoolPolicy(true),
		RollingOrder:   ovsBoolPolicy(false),
	}
	if out.UplinkTeamingPolicy != nil {
		teaming = *out.UplinkTeamingPolicy
	}
	if teaming.UplinkPortOrder == nil {
		teaming.UplinkPortOrder = &types.VMwareUplinkPortOrderPolicy{
			ActiveUplinkPort: append([]string(nil), uplinks...),
		}
	}
	out.UplinkTeamingPolicy = &teaming
	return &out
}

// ovsMergePortSetting returns cur with every policy that spec sets replaced:
// in a port group reconfiguration an unset policy means "unchanged".
func ovsMergePortSetting(cur *types.VMwareDVSPortSetting, spec types.BaseDVPortSetting) *types.VMwareDVSPortSetting {
	out := *cur
	switch x := spec.(type) {
	case *types.VMwareDVSPortSetting:
		ovsMergeFields(reflect.ValueOf(&out).Elem(), reflect.ValueOf(x).Elem())
	case *types.DVPortSetting:
		ovsMergeFields(reflect.ValueOf(&out.DVPortSetting).Elem(), reflect.ValueOf(x).Elem())
	}
	return &out
}

func ovsMergeFields(dst, src reflect.Value) {
	for i := 0; i < src.NumField(); i++ {
		f := src.Field(i)
		switch {
		case src.Type().Field(i).Anonymous && f.Kind() == reflect.Struct:
			ovsMergeFields(dst.Field(i), f)
		case (f.Kind() == reflect.Ptr || f.Kind() == reflect.Interface) && !f.IsNil():
			dst.Field(i).Set(f)
		}
	}
}

// ovsInheritedCopy returns a copy of a port group's setting with every policy
// marked inherited, as a port that overrides nothing shows it.
func ovsInheritedCopy(s *types.VMwareDVSPortSetting) *types.VMwareDVSPortSetting {
	out := *s
	ovsMarkInherited(reflect.ValueOf(&out).Elem())
	return &out
}

func ovsMarkInherited(v reflect.Value) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if v.Type().Field(i).Anonymous && f.Kind() == reflect.Struct {
			if v.Type().Field(i).Name == "DVPortSetting" {
				ovsMarkInherited(f)
			}
			continue
		}
		if (f.Kind() != reflect.Ptr && f.Kind() != reflect.Interface) || f.IsNil() {
			continue
		}
		elem := f
		if f.Kind() == reflect.Interface {
			elem = f.Elem()
		}
		if elem.Kind() != reflect.Ptr || elem.Elem().Kind() != reflect.Struct {
			continue
		}
		cp := reflect.New(elem.Elem().Type())
		cp.Elem().Set(elem.Elem())
		if inherited := cp.Elem().FieldByName("Inherited"); inherited.IsValid() && inherited.Kind() == reflect.Bool {
			inherited.SetBool(true)
		}
		f.Set(cp)
	}
}

func ovsCopyVlan(v types.BaseVmwareDistributedVirtualSwitchVlanSpec, inherited bool) types.BaseVmwareDistributedVirtualSwitchVlanSpec {
	switch x := v.(type) {
	case *types.VmwareDistributedVirtualSwitchVlanIdSpec:
		c := *x
		c.Inherited = inherited
		return &c
	case *types.VmwareDistributedVirtualSwitchTrunkVlanSpec:
		c := *x
		c.VlanId = append([]types.NumericRange(nil), x.VlanId...)
		c.Inherited = inherited
		return &c
	case *types.VmwareDistributedVirtualSwitchPvlanSpec:
		c := *x
		c.Inherited = inherited
		return &c
	}
	return v
}

// ovsVlanProblem says what is wrong with a VLAN setting, "" when nothing is.
func ovsVlanProblem(v types.BaseVmwareDistributedVirtualSwitchVlanSpec) string {
	switch x := v.(type) {
	case *types.VmwareDistributedVirtualSwitchVlanIdSpec:
		if x.VlanId < 0 || x.VlanId > 4094 {
			return fmt.Sprintf("VLAN id %d is outside 0-4094", x.VlanId)
		}
	case *types.VmwareDistributedVirtualSwitchTrunkVlanSpec:
		if len(x.VlanId) == 0 {
			return "a VLAN trunk needs at least one range"
		}
		for _, r := range x.VlanId {
			if r.Start < 0 || r.End > 4094 || r.Start > r.End {
				return fmt.Sprintf("VLAN trunk range %d-%d is not within 0-4094", r.Start, r.End)
			}
		}
	case *types.VmwareDistributedVirtualSwitchPvlanSpec:
		return "private VLANs are not simulated"
	}
	return ""
}

// ovsVlanRanges is the VLAN part of a port's runtime state.
func ovsVlanRanges(v types.BaseVmwareDistributedVirtualSwitchVlanSpec) ([]types.NumericRange, bool) {
	switch x := v.(type) {
	case *types.VmwareDistributedVirtualSwitchVlanIdSpec:
		return []types.NumericRange{{Start: x.VlanId, End: x.VlanId}}, false
	case *types.VmwareDistributedVirtualSwitchTrunkVlanSpec:
		return append([]types.NumericRange(nil), x.VlanId...), true
	}
	return nil, false
}

type ovsOverrides struct {
	vlan, security, block bool
}

func ovsAllowed(policy types.BaseDVPortgroupPolicy) ovsOverrides {
	switch p := policy.(type) {
	case *types.VMwareDVSPortgroupPolicy:
		return ovsOverrides{vlan: p.VlanOverrideAllowed, security: p.SecurityPolicyOverrideAllowed, block: p.BlockOverrideAllowed}
	case *types.DVPortgroupPolicy:
		return ovsOverrides{block: p.BlockOverrideAllowed}
	}
	return ovsOverrides{}
}

func ovsPolicyBool(own *bool, base *types.BoolPolicy) *types.BoolPolicy {
	if own != nil {
		return &types.BoolPolicy{Value: types.NewBool(*own)}
	}
	out := types.BoolPolicy{Value: types.NewBool(false)}
	if base != nil && base.Value != nil {
		out.Value = types.NewBool(*base.Value)
	}
	out.Inherited = true
	return &out
}

// effective is the setting FetchDVPorts shows for a port.
func (pg *ovsPortgroup) effective(p *ovsPort) *types.VMwareDVSPortSetting {
	s := ovsInheritedCopy(pg.setting)
	if p.vlan != nil {
		s.Vlan = ovsCopyVlan(p.vlan, false)
	}
	base := pg.setting.SecurityPolicy
	if base == nil {
		base = &types.DVSSecurityPolicy{}
	}
	s.SecurityPolicy = &types.DVSSecurityPolicy{
		InheritablePolicy: types.InheritablePolicy{Inherited: p.promiscuous == nil && p.forged == nil && p.macChanges == nil},
		AllowPromiscuous:  ovsPolicyBool(p.promiscuous, base.AllowPromiscuous),
		MacChanges:        ovsPolicyBool(p.macChanges, base.MacChanges),
		ForgedTransmits:   ovsPolicyBool(p.forged, base.ForgedTransmits),
	}
	s.Blocked = ovsPolicyBool(p.blocked, pg.setting.Blocked)
	return s
}
