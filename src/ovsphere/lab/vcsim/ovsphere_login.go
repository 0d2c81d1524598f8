package simulator

// The stock SessionManager lets LoginByToken in with any SAML subject and
// LoginExtensionByCertificate with any client certificate; with a user and
// password set on the command line those would be ways around them.

import (
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func init() {
	ovsRegister((*SessionManager)(nil), "LoginByToken", ovsRefuseLogin)
	ovsRegister((*SessionManager)(nil), "LoginExtensionByCertificate", ovsRefuseLogin)
}

func ovsRefuseLogin(ctx *Context, this mo.Reference, req interface{}, _ ovsNext) soap.HasFault {
	return &serverFaultBody{Reason: Fault("this simulator accepts only Login with its user name and password", new(types.InvalidLogin))}
}
