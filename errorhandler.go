package kubehandler

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
