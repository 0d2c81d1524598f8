package simulator

// EventManager.formatMessage parses the FullFormat template of an event type
// from esx.EventInfo with template.Must the first time such an event is
// posted, and caches it in EventManager.templates. Two of those templates are
// malformed ("{{.SourceHost.Name}, ..."), so posting VmMigratedEvent or
// VmBeingMigratedEvent panics and kills the request; most event types have no
// template at all and get an empty fullFormattedMessage. Filling the cache
// before anything is posted avoids both: a cached template is never parsed
// again.

import (
	"context"
	"log"
	"strings"
	"text/template"

	"github.com/vmware/govmomi/vim25/types"
)

var ovsEventTemplates = map[string]string{
	"VmBeingHotMigratedEvent":  "Migrating {{.Vm.Name}} from {{.Host.Name}} to {{.DestHost.Name}}",
	"VmBeingMigratedEvent":     "Migrating {{.Vm.Name}} (powered off) from {{.Host.Name}} to {{.DestHost.Name}}",
	"VmMigratedEvent":          "Migration of {{.Vm.Name}} from {{.SourceHost.Name}} to {{.Host.Name}} completed",
	"VmFailedMigrateEvent":     "Cannot migrate {{.Vm.Name}} from {{.Host.Name}} to {{.DestHost.Name}}: {{.Reason.LocalizedMessage}}",
	"DvsPortReconfiguredEvent": "Reconfigured ports {{join .PortKey}} in vSphere Distributed Switch {{.Dvs.Name}}",
}

var ovsTemplateFuncs = template.FuncMap{
	"join": func(s []string) string { return strings.Join(s, ", ") },
}

func ovsInstallTemplates() {
	m := Map.EventManager()
	Map.WithLock(m, func() {
		for id, text := range ovsEventTemplates {
			m.templates[id] = template.Must(template.New(id).Funcs(ovsTemplateFuncs).Parse(text))
		}
		for _, info := range m.Description.EventInfo {
			if _, ok := m.templates[info.Key]; ok {
				continue
			}
			if _, err := template.New(info.Key).Parse(info.FullFormat); err != nil {
				log.Printf("ovsphere: replacing the malformed message template of %s: %s", info.Key, err)
				m.templates[info.Key] = template.Must(template.New(info.Key).Parse(info.Key))
			}
		}
	})
}

// ovsPostEvents posts from outside a request (a goroutine finishing a
// vMotion); session is the session of the request that started the work,
// PostEvent reads its user name.
func ovsPostEvents(session *Session, events ...types.BaseEvent) {
	ctx := &Context{Context: context.Background(), Session: session, Map: Map}
	ctx.postEvent(events...)
}
