package kubehandler

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPendingEventsMerge(t *testing.T) {
	type ev struct {
		typ eventType
		obj string
	}
	a, u, d := addEvent, updateEvent, deleteEvent
	tests := []struct {
		name   string
		events []ev
		want   []ev // the dispatches, in order
	}{
		{"add", []ev{{a, "1"}}, []ev{{a, "1"}}},
		{"add then update stays add", []ev{{a, "1"}, {u, "2"}}, []ev{{a, "2"}}},
		{"updates merge", []ev{{u, "1"}, {u, "2"}, {u, "3"}}, []ev{{u, "3"}}},
		{"update then add is add", []ev{{u, "1"}, {a, "2"}}, []ev{{a, "2"}}},
		{"add then delete is delete", []ev{{a, "1"}, {d, "1-final"}}, []ev{{d, "1-final"}}},
		{"update then delete is delete", []ev{{u, "1"}, {d, "1-final"}}, []ev{{d, "1-final"}}},
		{"delete then add is both", []ev{{d, "old"}, {a, "new"}}, []ev{{d, "old"}, {a, "new"}}},
		{"delete then add then update", []ev{{d, "old"}, {a, "new"}, {u, "new-2"}}, []ev{{d, "old"}, {a, "new-2"}}},
		{"delete then update is both", []ev{{d, "old"}, {u, "new"}}, []ev{{d, "old"}, {u, "new"}}},
		{"delete, add, delete is one delete", []ev{{d, "old"}, {a, "new"}, {d, "new-final"}}, []ev{{d, "new-final"}}},
		{"update, delete, add", []ev{{u, "1"}, {d, "1-final"}, {a, "2"}}, []ev{{d, "1-final"}, {a, "2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p pendingEvents
			for _, e := range tt.events {
				p.push(e.typ, e.obj)
			}
			var got []ev
			for !p.empty() {
				s, more := p.pop()
				got = append(got, ev{s.typ, s.obj.(string)})
				if more == p.empty() {
					t.Fatalf("pop reported more=%v with %d stages left", more, len(tt.want)-len(got))
				}
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(ev{})); diff != "" {
				t.Errorf("dispatches (-want +got):\n%s", diff)
			}
		})
	}
}

// A failed event goes back in front of those that arrived while it ran, and
// is merged with them in order.
func TestPendingEventsUnpop(t *testing.T) {
	tests := []struct {
		name   string
		failed stage
		newer  []stage
		want   []stage
	}{
		{"alone", stage{updateEvent, "1"}, nil, []stage{{updateEvent, "1"}}},
		{"failed add, newer update", stage{addEvent, "1"}, []stage{{updateEvent, "2"}}, []stage{{addEvent, "2"}}},
		{"failed update, newer delete", stage{updateEvent, "1"}, []stage{{deleteEvent, "f"}}, []stage{{deleteEvent, "f"}}},
		{"failed delete, newer add", stage{deleteEvent, "old"}, []stage{{addEvent, "new"}}, []stage{{deleteEvent, "old"}, {addEvent, "new"}}},
		{"failed update, newer delete then add", stage{updateEvent, "1"}, []stage{{deleteEvent, "f"}, {addEvent, "2"}},
			[]stage{{deleteEvent, "f"}, {addEvent, "2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p pendingEvents
			for _, s := range tt.newer {
				p.push(s.typ, s.obj)
			}
			p.unpop(tt.failed)
			var got []stage
			for !p.empty() {
				s, _ := p.pop()
				got = append(got, s)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(stage{})); diff != "" {
				t.Errorf("dispatches (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEventTypeString(t *testing.T) {
	for typ, want := range map[eventType]string{addEvent: WorkqueueAddEvent, updateEvent: WorkqueueUpdateEvent, deleteEvent: WorkqueueDeleteEvent, noEvent: ""} {
		if got := typ.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", typ, got, want)
		}
	}
}
