package simulator

// Service.NewServer registers the stock ServeSDK on /sdk and starts serving
// at once, leaving no moment to put ovsphere's dispatcher in front of it
// (http.ServeMux refuses a second handler for the same path). OvsphereServe
// therefore builds the same mux with ovsServeSDK in its place and starts the
// HTTPS server itself.

import (
	"encoding/base64"
	"net"
	"net/http"
	"net/url"

	"github.com/vmware/govmomi/simulator/internal"
	"github.com/vmware/govmomi/vim25/types"
)

// OvsphereServe listens on listen (host:port, port 0 picks a free one) and
// serves the model's service over HTTPS with a self-signed certificate.
// Login accepts only user (SessionManager.validLogin reads Service.Listen.User).
func OvsphereServe(s *Service, listen string, user *url.Userinfo) (*Server, error) {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	s.ServeMux = mux
	s.sdk[Map.Path] = Map
	s.sdk[Map.Path+"/vimService"] = Map
	mux.HandleFunc(Map.Path, s.ovsServeSDK)
	mux.HandleFunc(Map.Path+"/vimService", s.ovsServeSDK)
	mux.HandleFunc(Map.Path+"/vimServiceVersions.xml", s.ServiceVersions)
	mux.HandleFunc(folderPrefix, s.ServeDatastore)
	mux.HandleFunc(guestPrefix, ServeGuest)
	mux.HandleFunc(nfcPrefix, ServeNFC)
	mux.HandleFunc("/about", s.About)

	u := &url.URL{Scheme: "https", Host: l.Addr().String(), Path: Map.Path}

	// Clients are sent to this server rather than to a HostSystem's name.
	Map.SessionManager().ServiceHostName = u.Host
	m := Map.OptionManager()
	m.Setting = append(m.Setting, &types.OptionValue{Key: "vcsim.server.url", Value: u.String()})

	withUser := *u
	withUser.User = user
	s.Listen = &withUser

	ts := &internal.Server{Listener: l, Config: &http.Server{Handler: mux}, TLS: s.TLS}
	ts.StartTLS()
	Map.SessionManager().TLSCert = func() string {
		return base64.StdEncoding.EncodeToString(ts.TLS.Certificates[0].Certificate[0])
	}

	return &Server{Server: ts, URL: u}, nil
}
