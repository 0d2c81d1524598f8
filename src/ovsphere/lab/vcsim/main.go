// Command vcsim runs VMware's vCenter simulator (govmomi's simulator package,
// version 0.24.2) with ovsphere's additions compiled into that package: the
// distributed ports, NIC binding, vMotion and membership that ovsphere reads
// and writes on a real vCenter. It prints one line with its URL once it
// listens, and serves until SIGTERM or SIGINT.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "host:port to listen on; port 0 picks a free port")
	user := flag.String("user", "ovsphere", "the only user name Login accepts")
	password := flag.String("password", "", "the only password Login accepts (default: $OVSPHERE_VCSIM_PASSWORD, else ovsphere)")
	datacenters := flag.Int("datacenters", 1, "datacenters")
	clusters := flag.Int("clusters", 1, "clusters per datacenter")
	hosts := flag.Int("hosts", 3, "hosts per cluster")
	standalone := flag.Int("standalone-hosts", 0, "standalone hosts per datacenter")
	vms := flag.Int("vms", 2, "VMs per resource pool (each cluster's pool and each standalone host's)")
	portgroups := flag.Int("portgroups", 1, "distributed port groups per datacenter, on one vSphere Distributed Switch")
	precopy := flag.Duration("precopy", time.Second, "how long a vMotion's memory pre-copy lasts")
	flag.Parse()

	// The environment keeps the password out of the process list.
	if *password == "" {
		*password = os.Getenv("OVSPHERE_VCSIM_PASSWORD")
	}
	if *password == "" {
		*password = "ovsphere"
	}
	if *user == "" || *password == "" {
		log.Fatal("-user and -password must not be empty")
	}
	for name, n := range map[string]int{"datacenters": *datacenters, "clusters": *clusters, "hosts": *hosts,
		"standalone-hosts": *standalone, "vms": *vms, "portgroups": *portgroups} {
		if n < 0 {
			log.Fatalf("-%s must not be negative", name)
		}
	}
	if *datacenters < 1 {
		log.Fatal("-datacenters must be at least 1")
	}
	if *precopy < 0 {
		log.Fatal("-precopy must not be negative")
	}

	model := simulator.VPX()
	model.Datacenter = *datacenters
	model.Cluster = *clusters
	model.ClusterHost = *hosts
	model.Host = *standalone
	model.Machine = *vms
	model.Portgroup = *portgroups
	began := time.Now()
	if err := model.Create(); err != nil {
		simulator.OvsphereRemove(model)
		log.Fatalf("creating the inventory: %s", err)
	}
	// The model's datastores are temporary directories.
	defer simulator.OvsphereRemove(model)

	created := time.Now()
	simulator.OvsphereSetup(simulator.OvsphereOptions{Precopy: *precopy})
	log.Printf("inventory created in %s, completed in %s", created.Sub(began).Round(time.Millisecond),
		time.Since(created).Round(time.Millisecond))

	model.Service.TLS = new(tls.Config)
	server, err := simulator.OvsphereServe(model.Service, *listen, url.UserPassword(*user, *password))
	if err != nil {
		simulator.OvsphereRemove(model)
		log.Fatalf("listening on %s: %s", *listen, err)
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)

	fmt.Printf("OVSPHERE-VCSIM-URL %s\n", server.URL)
	_ = os.Stdout.Sync()

	sig := <-signals
	// Not server.Close: it waits for WaitForUpdates calls that may never end.
	log.Printf("stopping on %s", sig)
}
