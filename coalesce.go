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
// Every queued key has one, so it is kept to one stage in line (24 bytes):
// the second stage, which only a delete followed by a live event has, lives
// out of line. While it is set, typ is twoStagesEvent and obj a *twoStages.
type pendingEvents struct {
	obj interface{}
	typ eventType
}

// twoStagesEvent is pendingEvents' typ while it holds a delete and the
// event that followed it, in a *twoStages. It is never dispatched.
const twoStagesEvent = deleteEvent + 1

// twoStages is a delete and the live event that followed it.
type twoStages struct {
	deleted interface{} // the delete's final state
	then    stage       // an add or update
}

// push merges one newer event into p.
func (p *pendingEvents) push(typ eventType, obj interface{}) {
	switch {
	case typ == deleteEvent:
		p.typ, p.obj = deleteEvent, obj
	case p.typ == deleteEvent:
		p.typ, p.obj = twoStagesEvent, &twoStages{deleted: p.obj, then: stage{typ, obj}}
	case p.typ == twoStagesEvent:
		t := p.obj.(*twoStages)
		t.then = stage{merge(t.then.typ, typ), obj}
	default:
		p.typ, p.obj = merge(p.typ, typ), obj
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
	if p.typ == twoStagesEvent {
		t := p.obj.(*twoStages)
		p.typ, p.obj = t.then.typ, t.then.obj
		return stage{deleteEvent, t.deleted}, true
	}
	s = stage{p.typ, p.obj}
	*p = pendingEvents{}
	return s, false
}

// unpop puts a stage that was popped but must be dispatched again (it failed,
// or asked to be requeued) back in front of the events that arrived since,
// and merges them in order, so the next dispatch reflects the newest state.
func (p *pendingEvents) unpop(s stage) {
	newer := *p
	*p = pendingEvents{typ: s.typ, obj: s.obj}
	for !newer.empty() {
		n, _ := newer.pop()
		p.push(n.typ, n.obj)
	}
}

// empty reports whether p has nothing to dispatch.
func (p *pendingEvents) empty() bool { return p.typ == noEvent }

// newest returns the object of p's last stage: the newest object seen.
func (p *pendingEvents) newest() interface{} {
	if p.typ == twoStagesEvent {
		return p.obj.(*twoStages).then.obj
	}
	return p.obj
}
