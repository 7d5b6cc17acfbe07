package kubehandler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// Step is one step of a Chain. Every EventHandler is a Step, and so is a
// DefaultHandler-embedding type, a Chain, a TypedHandler, and a StepFunc or
// DeleteStepFunc.
//
// In a Chain, AddFunc and UpdateFunc are called for live objects, and
// DeleteFunc for objects being deleted: on a delete event (the object is gone;
// Event.Type is WorkqueueDeleteEvent) and on an add or update of an object
// that has a deletion timestamp (finalizers hold it; Event.Type is add or
// update). DeleteFunc may therefore be called several times for one object
// and must be idempotent; a dependent already gone counts as cleaned up.
type Step interface {
	AddFunc(ctx context.Context, namespace, name string) error
	UpdateFunc(ctx context.Context, namespace, name string) error
	DeleteFunc(ctx context.Context, namespace, name string) error
}

// StepFunc adapts a function to a Step for live objects: AddFunc and
// UpdateFunc call it, DeleteFunc does nothing.
type StepFunc func(ctx context.Context, namespace, name string) error

var _ Step = StepFunc(nil)

// AddFunc calls f.
func (f StepFunc) AddFunc(ctx context.Context, namespace, name string) error {
	return f(ctx, namespace, name)
}

// UpdateFunc calls f.
func (f StepFunc) UpdateFunc(ctx context.Context, namespace, name string) error {
	return f(ctx, namespace, name)
}

// DeleteFunc does nothing and returns nil.
func (f StepFunc) DeleteFunc(context.Context, string, string) error { return nil }

// DeleteStepFunc adapts a function to a Step for the delete path: DeleteFunc
// calls it, AddFunc and UpdateFunc do nothing.
type DeleteStepFunc func(ctx context.Context, namespace, name string) error

var _ Step = DeleteStepFunc(nil)

// AddFunc does nothing and returns nil.
func (f DeleteStepFunc) AddFunc(context.Context, string, string) error { return nil }

// UpdateFunc does nothing and returns nil.
func (f DeleteStepFunc) UpdateFunc(context.Context, string, string) error { return nil }

// DeleteFunc calls f.
func (f DeleteStepFunc) DeleteFunc(ctx context.Context, namespace, name string) error {
	return f(ctx, namespace, name)
}

// PatchFunc sends a patch of the object namespace/name (or of its
// subresources, such as "status") to the API server, as the Patch method of
// a typed or dynamic client does. A Chain uses it to add and remove its
// finalizer; ClientPatch makes one from a client. It has the signature of
// handlers/pause's PatchFunc, so one function serves both.
type PatchFunc func(ctx context.Context, namespace, name string, pt types.PatchType, data []byte, subresources ...string) error

// Patcher is the Patch method of a namespaced client of one resource: a
// typed client such as clientset.AppsV1().Deployments(namespace), or a
// dynamic one, dynamicClient.Resource(gvr).Namespace(namespace).
type Patcher[T any] interface {
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
}

// ClientPatch returns a PatchFunc that patches through the client that
// client returns for a namespace, for example
//
//	kubehandler.ClientPatch(clientset.AppsV1().Deployments)
//	kubehandler.ClientPatch(dynamicClient.Resource(gvr).Namespace)
//
// For cluster-scoped resources it is called with an empty namespace.
func ClientPatch[T any, C Patcher[T]](client func(namespace string) C) PatchFunc {
	return func(ctx context.Context, namespace, name string, pt types.PatchType, data []byte, subresources ...string) error {
		_, err := client(namespace).Patch(ctx, name, pt, data, metav1.PatchOptions{}, subresources...)
		return err
	}
}

// Chain is an EventHandler that runs Steps in order, as one handler of one
// informer: one Key, so at most one call in flight per object (promise 1).
// Register it on an EventLoop like any handler; fill in its DefaultHandler
// (Informer, and a Name unique within the loop).
//
// A step returns, for the event it handles:
//   - nil, or SkipStep: done; the next step runs.
//   - CancelChain: the chain stops here, as a success; no further step runs
//     for this event. Requeues asked by earlier steps still apply.
//   - RequeueAfter(d) or KeepFinalizer(d): done for now; the next steps run,
//     and then the chain returns RequeueAfter with the smallest delay any
//     step asked for (KeepFinalizer if any step returned it), so the event
//     is dispatched again after it.
//   - any other error, or a panic: the chain stops and returns the error,
//     wrapped with the step's position and name (a panic becomes an error
//     that the loop logs with its stack and counts as a panic). The loop
//     retries the whole chain through the rate limiter; a Terminal error is
//     not retried. A failure wins over requeues asked by earlier steps.
//
// Live objects go to the steps' AddFunc or UpdateFunc; objects being deleted
// (a delete event, or an add or update of an object with a deletion
// timestamp) go to their DeleteFunc (see Step). The object is Event.Object
// of the call (EventFromContext), or else the one in the informer's store;
// an add or update of an object found in neither is skipped, as gone: its
// delete event runs the delete path. A chain without an Informer (a step of
// another handler) that gets no object treats the object as live.
//
// With a Finalizer, the chain owns that finalizer: it adds it to every live
// object before the steps run, and on the delete path removes it once every
// step's DeleteFunc returned nil or SkipStep, which lets the API server
// finish the deletion. Anything else leaves it on: KeepFinalizer, the
// explicit way to say "not cleaned up yet, call again after d"; RequeueAfter
// (the same, without saying so); CancelChain (the deletion then waits for
// the object's next event); and failures, which are retried. An object being
// deleted that no longer carries the finalizer was cleaned up already: its
// updates skip the delete path, and its delete event runs it once more.
// The finalizer is written by AddFinalizer and RemoveFinalizer: JSON merge
// patches with the object's resourceVersion as a precondition, so a
// concurrent change to the list is a conflict, never overwritten; then the
// chain does nothing more for this event, since the newer version's event
// runs it again.
//
// Objects handed to steps come from the informer's cache: do not mutate
// them. The chain itself never does.
type Chain struct {
	DefaultHandler

	// Steps run in order for each event. A nil step is a Terminal error.
	Steps []Step

	// Finalizer, if not empty, is the finalizer the chain adds to live
	// objects and removes when their delete path is done.
	Finalizer string

	// Patch sends the finalizer patches. It is required with a Finalizer
	// (without it every call returns a Terminal error); ClientPatch makes one.
	Patch PatchFunc
}

var _ EventHandler = (*Chain)(nil)

// AddFunc runs the steps' AddFunc for a live object, their DeleteFunc for an
// object being deleted.
func (c *Chain) AddFunc(ctx context.Context, namespace, name string) error {
	return c.handle(ctx, namespace, name, false, Step.AddFunc)
}

// UpdateFunc runs the steps' UpdateFunc for a live object, their DeleteFunc
// for an object being deleted.
func (c *Chain) UpdateFunc(ctx context.Context, namespace, name string) error {
	return c.handle(ctx, namespace, name, false, Step.UpdateFunc)
}

// DeleteFunc runs the steps' DeleteFunc.
func (c *Chain) DeleteFunc(ctx context.Context, namespace, name string) error {
	return c.handle(ctx, namespace, name, true, Step.DeleteFunc)
}

// stepMethod picks the method of a Step an event calls.
type stepMethod func(s Step, ctx context.Context, namespace, name string) error

func (c *Chain) handle(ctx context.Context, namespace, name string, deleted bool, live stepMethod) error {
	if c.Finalizer != "" && c.Patch == nil {
		return Terminal(errors.New("kubehandler: a Chain with a Finalizer needs a Patch"))
	}
	if deleted {
		// The object is gone: there is no finalizer left to remove.
		return c.run(ctx, namespace, name, Step.DeleteFunc).err()
	}
	obj, found, err := lookup(ctx, informerStore(c.Informer), namespace, name)
	if err != nil {
		return fmt.Errorf("kubehandler: chain: looking up the object: %w", err)
	}
	if !found && c.Informer == nil {
		// Nowhere to look the object up (a chain used as a step of another
		// handler, or on a WorkQueue): the caller decided it is live.
		if c.Finalizer != "" {
			return Terminal(errors.New("kubehandler: a Chain with a Finalizer needs the object: set its Informer"))
		}
		return c.run(ctx, namespace, name, live).err()
	}
	if !found {
		klog.FromContext(ctx).V(4).Info("Object not found; skipping the chain, its delete will follow")
		return nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return Terminal(fmt.Errorf("kubehandler: chain: %T has no metadata: %w", obj, err))
	}
	owned := c.Finalizer != "" && slices.Contains(m.GetFinalizers(), c.Finalizer)

	if m.GetDeletionTimestamp() != nil {
		if c.Finalizer != "" && !owned {
			return nil // cleaned up already; the delete event runs the delete path once more
		}
		r := c.run(ctx, namespace, name, Step.DeleteFunc)
		if r.done && owned {
			// Not removed (the object changed meanwhile): its next event
			// runs the delete path again.
			if _, err := RemoveFinalizer(ctx, c.Patch, m, c.Finalizer); err != nil {
				return fmt.Errorf("kubehandler: chain: removing finalizer %s: %w", c.Finalizer, err)
			}
		}
		return r.err()
	}

	if c.Finalizer != "" && !owned {
		added, err := AddFinalizer(ctx, c.Patch, m, c.Finalizer)
		if err != nil {
			return fmt.Errorf("kubehandler: chain: adding finalizer %s: %w", c.Finalizer, err)
		}
		if !added {
			// Changed or gone meanwhile: the next event runs the chain.
			klog.FromContext(ctx).V(4).Info("Finalizer not added; the object's next event runs the chain")
			return nil
		}
	}
	return c.run(ctx, namespace, name, live).err()
}

// chainResult is what the steps of one event returned, together.
type chainResult struct {
	failed  error         // a step failed: the chain's error
	done    bool          // every step returned nil or SkipStep
	requeue bool          // some step asked for a requeue
	after   time.Duration // the smallest delay asked for, when requeue
	keep    bool          // some step returned KeepFinalizer
}

// err is what the chain returns to the loop.
func (r chainResult) err() error {
	switch {
	case r.failed != nil:
		return r.failed
	case r.keep:
		return KeepFinalizer(r.after)
	case r.requeue:
		return RequeueAfter(r.after)
	}
	return nil
}

// run calls method of each step in turn, and settles what they return.
func (c *Chain) run(ctx context.Context, namespace, name string, method stepMethod) chainResult {
	r := chainResult{done: true}
	for i, s := range c.Steps {
		if err := ctx.Err(); err != nil {
			r.failed, r.done = fmt.Errorf("kubehandler: chain stopped before step %d/%d: %w", i+1, len(c.Steps), err), false
			return r
		}
		err := callStep(ctx, s, method, namespace, name)
		var requeue *requeueAfterError
		switch {
		case err == nil || IsSkipStep(err):
		case IsCancelChain(err):
			klog.FromContext(ctx).V(4).Info("Chain cancelled", "step", i+1, "by", stepName(s))
			r.done = false
			return r
		case errors.As(err, &requeue):
			if !r.requeue || requeue.after < r.after {
				r.after = requeue.after
			}
			r.requeue, r.done = true, false
			r.keep = r.keep || IsKeepFinalizer(err)
		default:
			r.failed = fmt.Errorf("kubehandler: chain step %d/%d (%s): %w", i+1, len(c.Steps), stepName(s), err)
			r.done = false
			return r
		}
	}
	return r
}

// callStep calls method of s, turning a panic into the error the loop makes
// of a handler's panic, so that it is logged with the step's stack and
// counted as a panic. The loop would recover it too, but could not say which
// step panicked, and a chain used as a step of another chain would lose the
// steps after it.
func callStep(ctx context.Context, s Step, method stepMethod, namespace, name string) (err error) {
	if s == nil {
		return Terminal(errors.New("step is nil"))
	}
	defer recoverPanic(&err)
	return method(s, ctx, namespace, name)
}

// stepName names s in errors and logs: its GetName if it has one, else its
// Go type.
func stepName(s Step) string {
	if n, ok := s.(interface{ GetName() string }); ok {
		if name := safeName(n); name != "" {
			return name
		}
	}
	return fmt.Sprintf("%T", s)
}

// safeName calls GetName, which may panic on a nil receiver.
func safeName(n interface{ GetName() string }) (name string) {
	defer func() {
		if recover() != nil {
			name = ""
		}
	}()
	return n.GetName()
}
