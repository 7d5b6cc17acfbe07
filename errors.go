package kubehandler

import (
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// Every error type and sentinel of the package is here, in two groups: what
// a handler (or a step of a Chain) returns to steer the loop, and what the
// loop itself returns or makes of a call. What the loop does with an
// ordinary error is the ErrorHandler's choice (errorhandler.go).

// What a handler returns.
//
// Besides nil and ordinary errors, a handler returns RequeueAfter and
// Terminal, and a step of a Chain SkipStep, CancelChain and KeepFinalizer:
// values, rather than flags set on the context. An error is what a step
// already returns, so a decision made deep inside a helper function travels
// up through ordinary `if err != nil { return err }` code, may be wrapped
// with context (errors.Is and errors.As see through), and cannot be
// forgotten on the way; a context flag can be set and then lost by code that
// returns a plain error after it. Outside a chain the loop understands them
// too: SkipStep and CancelChain are successes, KeepFinalizer is a
// RequeueAfter.

// requeueAfterError is what RequeueAfter returns.
type requeueAfterError struct{ after time.Duration }

func (e *requeueAfterError) Error() string {
	return fmt.Sprintf("requeue after %s", e.after)
}

// RequeueAfter returns an error that a handler returns to say: this call
// succeeded, dispatch the same event again after d. The key's backoff is
// reset, as on success. If a newer event for the key arrives before d has
// passed, it is merged with the requeued one and dispatched at once. A d of
// zero or less requeues at once. It may be wrapped (errors.As finds it).
func RequeueAfter(d time.Duration) error { return &requeueAfterError{after: d} }

// terminalError is what Terminal returns.
type terminalError struct{ err error }

func (e *terminalError) Error() string {
	if e.err == nil {
		return "terminal error"
	}
	return "terminal error: " + e.err.Error()
}

func (e *terminalError) Unwrap() error { return e.err }

// Terminal wraps err to mark a failure that retrying cannot fix (invalid
// spec, a resource the controller may never touch). The loop logs it, counts
// it and drops the event without retrying and without asking the
// ErrorHandler; the next event for the key dispatches again. errors.Is and
// errors.As see through the wrapper to err.
func Terminal(err error) error { return &terminalError{err: err} }

// IsTerminal reports whether err, or an error it wraps, was made by Terminal.
func IsTerminal(err error) bool {
	var t *terminalError
	return errors.As(err, &t)
}

var (
	errSkipStep    = errors.New("skip the rest of this step")
	errCancelChain = errors.New("cancel the rest of the chain")
)

// SkipStep returns an error that ends the current step's work early, as a
// success: a Chain goes on with the next step. Use it from helpers deep in a
// step that find there is nothing to do.
func SkipStep() error { return errSkipStep }

// CancelChain returns an error that ends the handling of this event, as a
// success: a Chain runs no further step, and the key is forgotten as after
// any success. The next event for the key runs the chain again from the
// start. The pause handler returns it for a paused object.
func CancelChain() error { return errCancelChain }

// IsSkipStep reports whether err, or an error it wraps, came from SkipStep.
func IsSkipStep(err error) bool { return errors.Is(err, errSkipStep) }

// IsCancelChain reports whether err, or an error it wraps, came from
// CancelChain.
func IsCancelChain(err error) bool { return errors.Is(err, errCancelChain) }

// keepFinalizerError is what KeepFinalizer returns: a RequeueAfter that a
// Chain also reads as "leave the finalizer on".
type keepFinalizerError struct{ requeueAfterError }

func (e *keepFinalizerError) Error() string {
	return "keep the finalizer; " + e.requeueAfterError.Error()
}

func (e *keepFinalizerError) Unwrap() error { return &e.requeueAfterError }

// KeepFinalizer returns an error a step returns on the delete path of an
// object (it has a deletion timestamp) to say: not done yet, keep the
// object's finalizer so that the deletion waits, and replay this event after
// d. It is not a failure: nothing is logged as an error and the key's
// backoff is reset. A Chain with a finalizer leaves it on; to the loop it is
// RequeueAfter(d).
func KeepFinalizer(d time.Duration) error {
	return &keepFinalizerError{requeueAfterError{after: d}}
}

// IsKeepFinalizer reports whether err, or an error it wraps, came from
// KeepFinalizer.
func IsKeepFinalizer(err error) bool {
	var k *keepFinalizerError
	return errors.As(err, &k)
}

// What the loop returns, or makes of a call.

// ErrHandlerTimeout is wrapped by the error of a handler call that overran
// the deadline set with WithHandlerTimeout.
var ErrHandlerTimeout = errors.New("handler call overran its timeout")

// ErrDrainTimeout is wrapped by the error Run returns when handler calls were
// still running when the drain timeout set with WithDrainTimeout ran out.
var ErrDrainTimeout = errors.New("handler calls still running after the drain timeout")

// ErrLeaderElectionLost is returned (wrapped) by Run when the loop lost its
// lease: it could not renew it within the renew deadline (the API server was
// unreachable, or the process froze) or a read of the Lease showed another
// holder. No call started from that moment, and the calls in flight were
// cancelled and waited for. Exit and let the process restart: a replica
// does not stand for election again within the same Run.
var ErrLeaderElectionLost = errors.New("kubehandler: leader election lost")

// errNotALoop is what the checks of health.go return for a Loop this package
// did not make.
var errNotALoop = errors.New("kubehandler: not an EventLoop or WorkQueue made by kubehandler")

// timeoutError is the error of a call that overran WithHandlerTimeout.
type timeoutError struct {
	timeout time.Duration
	err     error // what the handler returned, maybe nil
}

func (e *timeoutError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("%v (%s)", ErrHandlerTimeout, e.timeout)
	}
	return fmt.Sprintf("%v (%s): %v", ErrHandlerTimeout, e.timeout, e.err)
}

func (e *timeoutError) Unwrap() []error { return []error{ErrHandlerTimeout, e.err} }

// panicError is a recovered panic, turned into an error so that it is
// retried like one (promise 4), or reported (see recoverPanic).
type panicError struct {
	value interface{}
	stack []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("handler panicked: %v", e.value)
}

// Unwrap returns the panic value when it is an error (panic(err)), so that
// errors.Is and errors.As see it.
func (e *panicError) Unwrap() error {
	err, _ := e.value.(error)
	return err
}

// recoverPanic, deferred, turns a panic of the function deferring it into a
// *panicError in *err, with the stack of the panic. It guards every call of
// user code that may panic (handler calls, chain steps, a handler's methods
// while it is hooked) and the workers.
func recoverPanic(err *error) {
	if p := recover(); p != nil {
		*err = &panicError{value: p, stack: debug.Stack()}
	}
}
