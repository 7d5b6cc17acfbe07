package kubehandler

// eventType is the internal form of WorkqueueAddEvent, WorkqueueUpdateEvent
// and WorkqueueDeleteEvent: small, so pending events cost little to merge.
type eventType uint8

const (
	noEvent eventType = iota
	addEvent
	updateEvent
	deleteEvent
)

// String returns the public name of t, as in WorkqueueAddEvent.
func (t eventType) String() string {
	switch t {
	case addEvent:
		return WorkqueueAddEvent
	case updateEvent:
		return WorkqueueUpdateEvent
	case deleteEvent:
		return WorkqueueDeleteEvent
	}
	return ""
}

// stage is one event to dispatch: its type and the newest object seen for it.
type stage struct {
	typ eventType
	obj interface{}
}

// pendingEvents is what one key still has to dispatch. Events that arrive
// while the key waits are merged (promise 2):
//
//   - add then update stays add; update then update is update;
//   - anything then delete is delete, carrying the newest final state;
//   - delete then add (the object came back) is kept as two stages: the
//     delete is dispatched first, then the add.
//
// then is set only when first is a delete.
type pendingEvents struct {
	first, then stage
}

// push merges one newer event into p.
func (p *pendingEvents) push(typ eventType, obj interface{}) {
	switch {
	case typ == deleteEvent:
		p.first, p.then = stage{deleteEvent, obj}, stage{}
	case p.first.typ == deleteEvent:
		p.then = p.then.merge(typ, obj)
	default:
		p.first = p.first.merge(typ, obj)
	}
}

// merge folds a newer add or update into s. The result is an add if either
// is an add (the handler has not yet seen the object exist), else an update;
// the object is always the newer one.
func (s stage) merge(typ eventType, obj interface{}) stage {
	if s.typ == addEvent {
		typ = addEvent
	}
	return stage{typ, obj}
}

// pop removes and returns the event to dispatch now, and reports whether
// another stage is left behind it.
func (p *pendingEvents) pop() (s stage, more bool) {
	s = p.first
	p.first, p.then = p.then, stage{}
	return s, p.first.typ != noEvent
}

// unpop puts a stage that was popped but must be dispatched again (it failed,
// or asked to be requeued) back in front of the events that arrived since,
// and merges them in order, so the next dispatch reflects the newest state.
func (p *pendingEvents) unpop(s stage) {
	newer := *p
	*p = pendingEvents{first: s}
	if newer.first.typ != noEvent {
		p.push(newer.first.typ, newer.first.obj)
	}
	if newer.then.typ != noEvent {
		p.push(newer.then.typ, newer.then.obj)
	}
}

// empty reports whether p has nothing to dispatch.
func (p *pendingEvents) empty() bool { return p.first.typ == noEvent }
