package simulator

// Task.Run puts the Go type name ("*types.NotFound") in a failed task's
// localizedMessage, and pyVmomi turns that into the fault's msg; clients then
// show nothing useful. ovsphere's tasks carry a sentence instead. Task.Run also
// finishes inside the call; vMotion needs a task that stays running, hence
// ovsStartTask / ovsFinishTask.

import (
	"fmt"
	"time"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// ovsError is a fault and the sentence that explains it to an operator.
type ovsError struct {
	fault types.BaseMethodFault
	msg   string
}

func ovsErr(fault types.BaseMethodFault, format string, args ...interface{}) *ovsError {
	msg := fmt.Sprintf(format, args...)
	fault.GetMethodFault().FaultMessage = []types.LocalizableMessage{{Key: "ovsphere.simulator", Message: msg}}
	return &ovsError{fault: fault, msg: msg}
}

func (e *ovsError) soapFault() *soap.Fault {
	return Fault(e.msg, e.fault)
}

func (e *ovsError) localized() types.LocalizedMethodFault {
	return types.LocalizedMethodFault{Fault: e.fault, LocalizedMessage: e.msg}
}

// ovsStartTask creates a task on obj and marks it running. name is the Go
// name of the method ("MigrateVMTask"): CreateTask turns it into the SOAP name
// ("MigrateVM_Task") that pyVmomi resolves when it sees a running task (a
// name it cannot resolve makes pyVim's WaitForTask crash).
func ovsStartTask(obj mo.Reference, name string) *Task {
	task := CreateTask(obj, name, nil)
	Map.WithLock(task, func() {
		Map.Update(task, []types.PropertyChange{
			{Name: "info.startTime", Val: time.Now()},
			{Name: "info.state", Val: types.TaskInfoStateRunning},
		})
	})
	return task
}

// ovsFinishTask may be called from any goroutine.
func ovsFinishTask(task *Task, result types.AnyType, err *ovsError) {
	state := types.TaskInfoStateSuccess
	var fault interface{}
	if err != nil {
		state = types.TaskInfoStateError
		fault = err.localized()
	}
	Map.WithLock(task, func() {
		Map.Update(task, []types.PropertyChange{
			{Name: "info.completeTime", Val: time.Now()},
			{Name: "info.state", Val: state},
			{Name: "info.result", Val: result},
			{Name: "info.error", Val: fault},
		})
	})
}

// ovsRunTask runs f as a task that is finished when ovsRunTask returns.
func ovsRunTask(obj mo.Reference, name string, f func() (types.AnyType, *ovsError)) types.ManagedObjectReference {
	task := ovsStartTask(obj, name)
	result, err := f()
	ovsFinishTask(task, result, err)
	return task.Self
}

// ovsTaskDone reports whether a finished stock task succeeded, and its result.
func ovsTaskDone(ref types.ManagedObjectReference) (types.AnyType, bool) {
	task, ok := Map.Get(ref).(*Task)
	if !ok {
		return nil, false
	}
	var result types.AnyType
	var success bool
	Map.WithLock(task, func() {
		success = task.Info.State == types.TaskInfoStateSuccess
		result = task.Info.Result
	})
	return result, success
}
