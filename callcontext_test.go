package kubehandler

import "testing"

// The handler's logger is built lazily through logr's context key, which
// must have been found.
func TestLogrContextKeyFound(t *testing.T) {
	if logrContextKey == nil {
		t.Fatal("logr's context key was not found; handler loggers fall back to eager construction")
	}
}
