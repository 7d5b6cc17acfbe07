package kubehandler

import (
	"errors"
	"time"
)

// Control flow for handlers made of several steps (see Chain): values a step
// returns, like RequeueAfter and Terminal, rather than flags set on the
// context. An error is what a step already returns, so a decision made deep
// inside a helper function travels up through ordinary `if err != nil {
// return err }` code, may be wrapped with context (errors.Is and errors.As
// see through), and cannot be forgotten on the way; a context flag can be set
// and then lost by code that returns a plain error after it.
//
// Outside a chain the loop understands them too: SkipStep and CancelChain
// are successes, KeepFinalizer is a RequeueAfter.

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
