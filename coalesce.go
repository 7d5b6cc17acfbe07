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
// The second stage is set only when the first is a delete. The fields are
// laid out by hand (types together) to keep entries small.
type pendingEvents struct {
	firstObj, thenObj interface{}
	first, then       eventType
}

// push merges one newer event into p.
func (p *pendingEvents) push(typ eventType, obj interface{}) {
	switch {
	case typ == deleteEvent:
		p.first, p.firstObj = deleteEvent, obj
		p.then, p.thenObj = noEvent, nil
	case p.first == deleteEvent:
		p.then, p.thenObj = merge(p.then, typ), obj
	default:
		p.first, p.firstObj = merge(p.first, typ), obj
	}
}

// merge returns the type of a live (non-delete) event typ folded into one
// of type prev: an add if either is an add (the handler has not yet seen the
// object exist), else an update.
func merge(prev, typ eventType) eventType {
	if prev == addEvent {
		return addEvent
	}
	return typ
}

// pop removes and returns the event to dispatch now, and reports whether
// another stage is left behind it.
func (p *pendingEvents) pop() (s stage, more bool) {
	s = stage{p.first, p.firstObj}
	p.first, p.firstObj = p.then, p.thenObj
	p.then, p.thenObj = noEvent, nil
	return s, p.first != noEvent
}

// unpop puts a stage that was popped but must be dispatched again (it failed,
// or asked to be requeued) back in front of the events that arrived since,
// and merges them in order, so the next dispatch reflects the newest state.
func (p *pendingEvents) unpop(s stage) {
	newer := *p
	*p = pendingEvents{first: s.typ, firstObj: s.obj}
	if newer.first != noEvent {
		p.push(newer.first, newer.firstObj)
	}
	if newer.then != noEvent {
		p.push(newer.then, newer.thenObj)
	}
}

// empty reports whether p has nothing to dispatch.
func (p *pendingEvents) empty() bool { return p.first == noEvent }
