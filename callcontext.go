package kubehandler

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
)

// callContext is the context of one handler call. It is Run's context (its
// deadline, cancellation and values) plus the Event and a logger with the
// handler, namespace, name and event type. The Event is rebuilt from the
// call's entry when asked for, and the logger built only if the handler asks
// for it: most calls log nothing, and a dispatch allocates this context and
// nothing else, 48 bytes.
type callContext struct {
	runner  *runner
	entry   *entry // its key never changes
	obj     interface{}
	typ     eventType
	retries int32
	logger  atomic.Pointer[logr.Logger] // built on first use
}

var _ context.Context = (*callContext)(nil)

func (c *callContext) Deadline() (time.Time, bool) { return c.runner.ctx.Deadline() }
func (c *callContext) Done() <-chan struct{}       { return c.runner.ctx.Done() }
func (c *callContext) Err() error                  { return c.runner.ctx.Err() }

func (c *callContext) Value(key interface{}) interface{} {
	if key == (eventContextKey{}) {
		return c
	}
	if key == logrContextKey && key != nil {
		return c.log()
	}
	return c.runner.ctx.Value(key)
}

// slotContext is a call's context in a ring (WithSharding): the call's,
// but done when its shard slot's term ends (or the Run's context is done),
// so a replica that loses a slot cancels its calls there. Values are the
// call's, the Run's included.
type slotContext struct {
	*callContext
	parent context.Context // the slot's context, a child of the Run's
}

func (c *slotContext) Deadline() (time.Time, bool) { return c.parent.Deadline() }
func (c *slotContext) Done() <-chan struct{}       { return c.parent.Done() }
func (c *slotContext) Err() error                  { return c.parent.Err() }

// event returns the call's Event.
func (c *callContext) event() Event {
	return Event{Type: c.typ.String(), Key: c.entry.key(), Object: c.obj, Retries: int(c.retries)}
}

// log returns the call's logger, building it on first use.
func (c *callContext) log() logr.Logger {
	if l := c.logger.Load(); l != nil {
		return *l
	}
	k := c.entry.key()
	built := c.runner.logger.WithValues("handler", k.Kind, "namespace", k.Namespace, "name", k.Name, "event", c.typ.String())
	c.logger.CompareAndSwap(nil, &built)
	return *c.logger.Load()
}

// logrContextKey is the key logr (and so klog.FromContext) looks up a
// context's logger under. logr does not export it; asking logr once, through a
// context that records the question, finds it.
var logrContextKey = func() interface{} {
	probe := &keyProbe{Context: context.Background()}
	_, _ = logr.FromContext(probe)
	return probe.key
}()

type keyProbe struct {
	context.Context
	key interface{}
}

func (p *keyProbe) Value(key interface{}) interface{} {
	p.key = key
	return nil
}
