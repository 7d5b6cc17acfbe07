package kubehandler

import (
	"errors"
	"fmt"
	"time"
)

// ErrorAction is what the loop does with a handler's error, as decided by an
// ErrorHandler.
type ErrorAction string

const (
	// ErrorActionRetry requeues the key through the rate limiter (per-item
	// exponential backoff by default). The retry dispatches the failed event
	// merged with whatever arrived for the key since.
	ErrorActionRetry ErrorAction = "retry"
	// ErrorActionIgnore drops this failure: the key is forgotten by the rate
	// limiter, and the next event for it dispatches again.
	ErrorActionIgnore ErrorAction = "ignore"
	// ErrorActionStop stops the loop: Run stops taking work, waits for the
	// calls in flight, discards what is still queued and returns an error
	// wrapping the handler's.
	ErrorActionStop ErrorAction = "stop"
)

// ErrorHandler decides what happens when a handler returns an error (or
// panics). key is the failing object's key, numRetries the number of times the
// key has been retried so far (0 on the first failure of an event) and err the
// handler's error. It is not consulted for Terminal errors, which are never
// retried, nor for RequeueAfter, which is not a failure.
//
// An ErrorHandler is called from worker goroutines, concurrently for
// different keys; it must be safe for that and return quickly.
type ErrorHandler func(key Key, numRetries int, err error) ErrorAction

// AlwaysRetry is the default ErrorHandler: every failure is retried through
// the rate limiter, without end.
func AlwaysRetry(Key, int, error) ErrorAction { return ErrorActionRetry }

// RetryUpTo returns an ErrorHandler that retries a key while it has been
// retried fewer than n times, then stops the loop. A handler that always
// fails is therefore called n+1 times before Run returns its error.
func RetryUpTo(n int) ErrorHandler {
	return func(_ Key, numRetries int, _ error) ErrorAction {
		if numRetries < n {
			return ErrorActionRetry
		}
		return ErrorActionStop
	}
}

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

// panicError is a recovered handler panic, turned into an error so that it is
// retried like one (promise 4).
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
