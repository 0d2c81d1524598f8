package simulator

// ReconfigureDVPort_Task is missing from the stock simulator. ovsphere sets a
// VM's VLAN on its own port through it, hundreds of ports per call, so it is
// all-or-nothing like vCenter: every spec is checked before any is applied.

import (
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func init() {
	ovsRegister((*DistributedVirtualSwitch)(nil), "ReconfigureDVPort_Task", ovsReconfigureDVPort)
}

// ovsPortEdit is one checked spec. A *Set flag with a nil value resets the
// setting to the port group's (inherited=true in the spec).
type ovsPortEdit struct {
	port *ovsPort
	spec *types.DVPortConfigSpec

	vlanSet                                       bool
	vlan                                          types.BaseVmwareDistributedVirtualSwitchVlanSpec
	promSet, forgedSet, macSet, blockedSet        bool
	promiscuous, forged, macChanges, blockedValue *bool
}

func ovsNotAllowed(port, pg, what, flag string) *ovsError {
	return ovsErr(&types.InvalidArgument{InvalidProperty: "port.setting." + what},
		"port %s: port group %s does not allow a port to override its %s (policy.%s is false)", port, pg, what, flag)
}

// ovsBoolEdit reads one BoolPolicy of a spec: set tells whether the spec
// touches it, value is nil for "inherit".
func ovsBoolEdit(key, name string, p *types.BoolPolicy) (set bool, value *bool, err *ovsError) {
	if p == nil {
		return false, nil, nil
	}
	if p.Inherited {
		return true, nil, nil
	}
	if p.Value == nil {
		return false, nil, ovsErr(&types.InvalidArgument{InvalidProperty: "port.setting." + name},
			"port %s: %s has inherited=false but no value", key, name)
	}
	v := *p.Value
	return true, &v, nil
}

// ovsUnsupported refuses per-port policies the simulator does not model,
// unless the spec only asks to inherit them.
func ovsUnsupported(key string, v reflect.Value) *ovsError {
	t := v.Type()
	for i := 0; i < v.NumField(); i++ {
		f, sf := v.Field(i), t.Field(i)
		if sf.Anonymous {
			if sf.Name == "DVPortSetting" {
				if err := ovsUnsupported(key, f); err != nil {
					return err
				}
			}
			continue
		}
		switch sf.Name {
		case "Vlan", "SecurityPolicy", "Blocked":
			continue
		}
		if (f.Kind() != reflect.Ptr && f.Kind() != reflect.Interface) || f.IsNil() {
			continue
		}
		elem := f
		if f.Kind() == reflect.Interface {
			elem = f.Elem()
		}
		if elem.Kind() == reflect.Ptr {
			elem = elem.Elem()
		}
		if inh := elem.FieldByName("Inherited"); inh.IsValid() && inh.Bool() {
			continue
		}
		name := strings.Split(sf.Tag.Get("xml"), ",")[0]
		return ovsErr(&types.NotSupported{},
			"port %s: the simulator keeps only vlan, securityPolicy and blocked per port, not %s", key, name)
	}
	return nil
}

func (sw *ovsSwitch) checkPortEdit(spec *types.DVPortConfigSpec) (*ovsPortEdit, *ovsError) {
	switch spec.Operation {
	case string(types.ConfigSpecOperationEdit):
	case string(types.ConfigSpecOperationAdd), string(types.ConfigSpecOperationRemove):
		return nil, ovsErr(&types.NotSupported{},
			"port %q: standalone ports cannot be added or removed in the simulator; use operation edit", spec.Key)
	default:
		return nil, ovsErr(&types.InvalidArgument{InvalidProperty: "port.operation"},
			"port %q: operation %q is not add, edit or remove", spec.Key, spec.Operation)
	}
	p := sw.ports[spec.Key]
	if p == nil {
		return nil, ovsErr(&types.NotFound{}, "port %q does not exist on vSphere Distributed Switch %s", spec.Key, sw.name)
	}
	if spec.ConfigVersion != "" && spec.ConfigVersion != strconv.Itoa(p.version) {
		return nil, ovsErr(&types.ConcurrentAccess{},
			"port %s was changed by another operation: the spec has configVersion %s, the port is at %d; read the port again",
			p.key, spec.ConfigVersion, p.version)
	}
	e := &ovsPortEdit{port: p, spec: spec}
	pg := sw.pgs[p.pg]
	pgName := p.pg
	var allowed ovsOverrides
	if pg != nil {
		pgName = pg.name
		allowed = ovsAllowed(pg.policy)
	}

	var base *types.DVPortSetting
	switch s := spec.Setting.(type) {
	case nil:
		return e, nil
	case *types.DVPortSetting:
		base = s
	case *types.VMwareDVSPortSetting:
		base = &s.DVPortSetting
		if err := ovsUnsupported(p.key, reflect.ValueOf(s).Elem()); err != nil {
			return nil, err
		}
		if s.Vlan != nil {
			e.vlanSet = true
			if !s.Vlan.GetVmwareDistributedVirtualSwitchVlanSpec().Inherited {
				if !allowed.vlan {
					return nil, ovsNotAllowed(p.key, pgName, "vlan", "vlanOverrideAllowed")
				}
				if problem := ovsVlanProblem(s.Vlan); problem != "" {
					return nil, ovsErr(&types.InvalidArgument{InvalidProperty: "port.setting.vlan"}, "port %s: %s", p.key, problem)
				}
				e.vlan = ovsCopyVlan(s.Vlan, false)
			}
		}
		if sp := s.SecurityPolicy; sp != nil {
			if sp.Inherited {
				e.promSet, e.forgedSet, e.macSet = true, true, true
			} else {
				var err *ovsError
				if e.promSet, e.promiscuous, err = ovsBoolEdit(p.key, "allowPromiscuous", sp.AllowPromiscuous); err != nil {
					return nil, err
				}
				if e.forgedSet, e.forged, err = ovsBoolEdit(p.key, "forgedTransmits", sp.ForgedTransmits); err != nil {
					return nil, err
				}
				if e.macSet, e.macChanges, err = ovsBoolEdit(p.key, "macChanges", sp.MacChanges); err != nil {
					return nil, err
				}
				if (e.promiscuous != nil || e.forged != nil || e.macChanges != nil) && !allowed.security {
					return nil, ovsNotAllowed(p.key, pgName, "securityPolicy", "securityPolicyOverrideAllowed")
				}
			}
		}
	default:
		return nil, ovsErr(&types.InvalidArgument{InvalidProperty: "port.setting"},
			"port %s: setting of type %T is not a port setting", p.key, s)
	}
	if err := ovsUnsupported(p.key, reflect.ValueOf(base).Elem()); err != nil {
		return nil, err
	}
	var err *ovsError
	if e.blockedSet, e.blockedValue, err = ovsBoolEdit(p.key, "blocked", base.Blocked); err != nil {
		return nil, err
	}
	if e.blockedValue != nil && !allowed.block {
		return nil, ovsNotAllowed(p.key, pgName, "blocked", "blockOverrideAllowed")
	}
	return e, nil
}

func (e *ovsPortEdit) apply(now time.Time) {
	p := e.port
	if e.spec.Name != "" {
		p.name = e.spec.Name
	}
	if e.spec.Description != "" {
		p.desc = e.spec.Description
	}
	if e.vlanSet {
		p.vlan = e.vlan
	}
	if e.promSet {
		p.promiscuous = e.promiscuous
	}
	if e.forgedSet {
		p.forged = e.forged
	}
	if e.macSet {
		p.macChanges = e.macChanges
	}
	if e.blockedSet {
		p.blocked = e.blockedValue
	}
	p.version++
	p.changed = now
}

func ovsReconfigureDVPort(ctx *Context, this mo.Reference, req interface{}, _ ovsNext) soap.HasFault {
	dvs := this.(*DistributedVirtualSwitch)
	r := req.(*types.ReconfigureDVPort_Task)

	task := ovsRunTask(dvs, "ReconfigureDVPortTask", func() (types.AnyType, *ovsError) {
		keys, err := ovsEditPorts(dvs, r.Port)
		if err != nil {
			return nil, err
		}
		ctx.postEvent(&types.DvsPortReconfiguredEvent{
			DvsEvent: types.DvsEvent{Event: types.Event{
				Datacenter: datacenterEventArgument(dvs),
				Dvs: &types.DvsEventArgument{
					EntityEventArgument: types.EntityEventArgument{Name: dvs.Name},
					Dvs:                 dvs.Self,
				},
			}},
			PortKey: keys,
		})
		return nil, nil
	})
	return &methods.ReconfigureDVPort_TaskBody{Res: &types.ReconfigureDVPort_TaskResponse{Returnval: task}}
}

func ovsEditPorts(dvs *DistributedVirtualSwitch, specs []types.DVPortConfigSpec) ([]string, *ovsError) {
	ovsState.Lock()
	defer ovsState.Unlock()
	sw := ovsSwitchOf(dvs.Self)
	if sw == nil {
		return nil, ovsErr(&types.NotFound{}, "vSphere Distributed Switch %s has no ports", dvs.Name)
	}
	seen := make(map[string]bool)
	edits := make([]*ovsPortEdit, 0, len(specs))
	for i := range specs {
		if seen[specs[i].Key] {
			return nil, ovsErr(&types.InvalidArgument{InvalidProperty: "port"},
				"port %s appears more than once in one ReconfigureDVPort_Task", specs[i].Key)
		}
		seen[specs[i].Key] = true
		e, err := sw.checkPortEdit(&specs[i])
		if err != nil {
			return nil, err
		}
		edits = append(edits, e)
	}
	now := time.Now()
	keys := make([]string, 0, len(edits))
	for _, e := range edits {
		e.apply(now)
		keys = append(keys, e.port.key)
	}
	return keys, nil
}
