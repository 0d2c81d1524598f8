package simulator

// The stock dispatcher (Service.call) finds a Go method by reflection on the
// managed object, and a method cannot be redefined in the same package, so
// ovsphere serves /sdk itself: it decodes the request as ServeSDK does, looks
// the (object type, SOAP method) pair up in ovsHooks and otherwise hands the
// request to the stock Service.call unchanged.
//
// A hook runs where the stock method would run: with the target object
// locked (Registry.WithLock, a plain non-reentrant mutex per object). It gets
// a next function that runs the stock method under that same lock; a hook that
// never calls next replaces the method, one that calls it first works "after"
// the stock method (stock tasks complete inside the call, so the hook sees the
// finished task), one that calls it last works "before".

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net/http"
	"reflect"
	"strings"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

type ovsNext func() soap.HasFault

type ovsHook func(ctx *Context, this mo.Reference, req interface{}, next ovsNext) soap.HasFault

type ovsHookKey struct {
	kind   reflect.Type
	method string
}

var ovsHooks = make(map[ovsHookKey]ovsHook)

// ovsRegister is called from init functions only, before the server starts,
// so ovsHooks needs no lock.
func ovsRegister(sample mo.Reference, method string, hook ovsHook) {
	key := ovsHookKey{reflect.TypeOf(sample), method}
	if _, dup := ovsHooks[key]; dup {
		panic("ovsphere: two hooks for " + method)
	}
	ovsHooks[key] = hook
}

// Methods a client may call before it has logged in; every other hooked
// method needs a session, as in Service.call.
var ovsNoSession = map[string]bool{
	"Login":                       true,
	"LoginByToken":                true,
	"LoginExtensionByCertificate": true,
}

func (s *Service) ovsServeSDK(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}

	body, err := s.readAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		log.Printf("error reading body: %s", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}

	ctx := &Context{
		req:     r,
		res:     w,
		svc:     s,
		Map:     s.sdk[r.URL.Path],
		Context: context.Background(),
	}
	ctx.Map.WithLock(s.sm, ctx.mapSession)

	var res soap.HasFault
	name := "?"
	method, err := UnmarshalBody(ctx.Map.typeFunc, body)
	if err != nil {
		res = serverFault(err.Error())
	} else {
		name = method.Name
		ctx.Header = method.Header
		if method.Name == "Fetch" {
			// Fetch is served by the PropertyCollector singleton, as in ServeSDK.
			method.This = ctx.Map.content().PropertyCollector
		}
		res = s.ovsCall(ctx, method)
	}

	var envelope interface{}
	if f := res.Fault(); f != nil {
		w.WriteHeader(http.StatusInternalServerError)
		envelope = struct {
			Fault *soapFault
		}{
			&soapFault{
				Code:   f.Code,
				String: f.String,
				Detail: struct {
					Fault *faultDetail
				}{&faultDetail{f.Detail.Fault}},
			},
		}
	} else {
		w.WriteHeader(http.StatusOK)
		envelope = &response{ctx.Map.Namespace, res}
	}

	var out bytes.Buffer
	fmt.Fprint(&out, xml.Header)
	e := xml.NewEncoder(&out)
	err = e.Encode(&soapEnvelope{
		Enc:  "http://schemas.xmlsoap.org/soap/encoding/",
		Env:  "http://schemas.xmlsoap.org/soap/envelope/",
		XSD:  "http://www.w3.org/2001/XMLSchema",
		XSI:  "http://www.w3.org/2001/XMLSchema-instance",
		Body: envelope,
	})
	if err == nil {
		err = e.Flush()
	}
	if err != nil {
		log.Printf("error encoding %s response: %s", name, err)
		return
	}
	_, _ = w.Write(out.Bytes())
}

func (s *Service) ovsCall(ctx *Context, method *Method) soap.HasFault {
	handler := ctx.Map.Get(method.This)
	if ctx.Session != nil {
		if h := ctx.Session.Get(method.This); h != nil {
			handler = h
		}
	}
	if handler == nil {
		return s.call(ctx, method)
	}
	hook, ok := ovsHooks[ovsHookKey{reflect.TypeOf(handler), method.Name}]
	if !ok {
		return s.call(ctx, method)
	}

	if ctx.Session == nil && !ovsNoSession[method.Name] {
		fault := &types.NotAuthenticated{
			NoPermission: types.NoPermission{Object: method.This, PrivilegeId: "System.View"},
		}
		return &serverFaultBody{Reason: Fault("", fault)}
	}
	ctx.Caller = &method.This

	goName := strings.Title(method.Name)
	if strings.HasSuffix(goName, vTaskSuffix) {
		goName = goName[:len(goName)-len(vTaskSuffix)] + sTaskSuffix
	}
	if e, ok := handler.(mo.Entity); ok {
		for _, dm := range e.Entity().DisabledMethod {
			if dm == goName {
				msg := fmt.Sprintf("%s method is disabled: %s", method.This, method.Name)
				return &serverFaultBody{Reason: Fault(msg, &types.MethodDisabled{})}
			}
		}
	}

	next := func() soap.HasFault {
		m := reflect.ValueOf(handler).MethodByName(goName)
		if !m.IsValid() {
			msg := fmt.Sprintf("%s does not implement: %s", method.This, method.Name)
			return &serverFaultBody{Reason: Fault(msg, &types.MethodNotFound{Receiver: method.This, Method: method.Name})}
		}
		var args []reflect.Value
		if m.Type().NumIn() == 2 {
			args = append(args, reflect.ValueOf(ctx))
		}
		args = append(args, reflect.ValueOf(method.Body))
		return m.Call(args)[0].Interface().(soap.HasFault)
	}

	var res soap.HasFault
	ctx.Map.WithLock(handler, func() {
		res = hook(ctx, handler, method.Body, next)
	})
	return res
}
