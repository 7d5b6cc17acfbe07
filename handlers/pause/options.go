package pause

import (
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"
)

// Option configures a Handler.
type Option func(*options)

type options struct {
	pauseDeletes bool
	recorder     record.EventRecorder
	store        cache.KeyGetter
	clock        clock.PassiveClock
}

// WithPauseDeletes holds back the delete path of paused objects too: a
// delete whose final state carries the pause label, and an add or update of
// a paused object that has a deletion timestamp (which gets the Paused
// condition). Finalizers of next then stay on a paused object until the
// label is removed. By default the delete path is passed on, paused or not,
// so that a controller cleans up after an object that goes away.
func WithPauseDeletes() Option {
	return func(o *options) { o.pauseDeletes = true }
}

// WithEventRecorder records a Kubernetes Event on an object when the handler
// pauses it (Normal, reason PausedByLabel), resumes it (Normal, Resumed), and
// when SelfPause pauses it (Warning, PausedByController). Without it no
// Events are recorded.
func WithEventRecorder(recorder record.EventRecorder) Option {
	return func(o *options) { o.recorder = recorder }
}

// WithStore sets where the handler looks an object up, by its
// namespace/name key, when its call carries no object (a call from outside
// an EventLoop, or a WorkQueue given a bare key): usually the informer's
// GetStore(). By default a Handler made by New uses next's informer's store;
// one made by NewStep has none, and then passes such events on.
func WithStore(store cache.KeyGetter) Option {
	return func(o *options) { o.store = store }
}

// WithClock sets the clock that stamps the LastTransitionTime of the
// conditions the handler sets; for tests.
func WithClock(c clock.PassiveClock) Option {
	return func(o *options) { o.clock = c }
}
