package simulator

// Every session gets its own copy of the PropertyCollector singleton, but all
// copies carry the singleton's moref, and WaitForUpdatesEx registers its
// collector for object changes under that moref: the last session to start
// waiting takes the registration from all the others, whose WaitForUpdates
// then never returns. Stock tasks finish inside their call, so pyVim's
// WaitForTask never really waits and nobody noticed; a vMotion task does
// wait, and several sessions (ovsphere's watcher, its actions, a test) wait at
// once. ovsphere registers each collector under a key of its own instead.

import (
	"fmt"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func init() {
	ovsRegister((*PropertyCollector)(nil), "WaitForUpdatesEx", ovsWaitForUpdates)
	ovsRegister((*PropertyCollector)(nil), "WaitForUpdates", ovsWaitForUpdates)
	ovsRegister((*PropertyCollector)(nil), "DestroyPropertyCollector", ovsDestroyPropertyCollector)
}

// ovsCollectorHandler forwards object changes to one collector for as long
// as its session lives.
type ovsCollectorHandler struct {
	key     types.ManagedObjectReference
	pc      *PropertyCollector
	session string
}

func (h *ovsCollectorHandler) Reference() types.ManagedObjectReference { return h.key }

func (h *ovsCollectorHandler) alive() bool {
	if _, ok := Map.SessionManager().getSession(h.session); ok {
		return true
	}
	Map.RemoveHandler(h)
	return false
}

func (h *ovsCollectorHandler) PutObject(o mo.Reference) {
	if h.alive() {
		h.pc.PutObject(o)
	}
}

func (h *ovsCollectorHandler) UpdateObject(o mo.Reference, changes []types.PropertyChange) {
	if h.alive() {
		h.pc.UpdateObject(o, changes)
	}
}

func (h *ovsCollectorHandler) RemoveObject(ref types.ManagedObjectReference) {
	if h.alive() {
		h.pc.RemoveObject(ref)
	}
}

func ovsCollectorKey(pc *PropertyCollector) types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "OvsphereCollectorHandler", Value: fmt.Sprintf("%p", pc)}
}

func ovsWaitForUpdates(ctx *Context, this mo.Reference, req interface{}, next ovsNext) soap.HasFault {
	pc := this.(*PropertyCollector)
	version := ""
	switch r := req.(type) {
	case *types.WaitForUpdatesEx:
		version = r.Version
	case *types.WaitForUpdates:
		version = r.Version
	}
	if version != "" {
		return next()
	}
	// Registered before the stock registration and kept after it, so that no
	// change is lost in between (at worst one arrives twice).
	Map.AddHandler(&ovsCollectorHandler{key: ovsCollectorKey(pc), pc: pc, session: ctx.Session.Key})
	res := next()
	Map.m.Lock()
	if h, ok := Map.handlers[pc.Self]; ok && h == RegisterObject(pc) {
		delete(Map.handlers, pc.Self)
	}
	Map.m.Unlock()
	return res
}

func ovsDestroyPropertyCollector(ctx *Context, this mo.Reference, req interface{}, next ovsNext) soap.HasFault {
	pc := this.(*PropertyCollector)
	res := next()
	Map.m.Lock()
	delete(Map.handlers, ovsCollectorKey(pc))
	Map.m.Unlock()
	return res
}
