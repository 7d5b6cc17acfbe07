package kubehandler

import (
	"fmt"
	"slices"
	"testing"

	"k8s.io/client-go/tools/cache"
)

// recordingLister records, in order, the initial lists and the events it
// is handed.
type recordingLister struct{ got []string }

func (l *recordingLister) listed(objs []interface{}, _ cache.Store) {
	l.got = append(l.got, fmt.Sprint("list ", objs))
}
func (l *recordingLister) OnAdd(obj interface{}, initial bool) {
	l.got = append(l.got, fmt.Sprint("add ", obj, " ", initial))
}
func (l *recordingLister) OnUpdate(_, obj interface{}) {
	l.got = append(l.got, fmt.Sprint("update ", obj))
}
func (l *recordingLister) OnDelete(obj interface{}) {
	l.got = append(l.got, fmt.Sprint("delete ", obj))
}

// A slot's initial list reaches an initialLister as exactly the adds of
// the list, before the first event that followed it, and once. (Listing
// the slot's cache when it had synced instead took in objects added since:
// an integration test saw a create handled twice.)
func TestListedLaterHandsExactlyTheListAheadOfWhatFollows(t *testing.T) {
	for _, next := range []struct {
		name  string
		event func(*listedLater)
		want  string
	}{
		{"add", func(l *listedLater) { l.OnAdd("c", false) }, "add c false"},
		{"update", func(l *listedLater) { l.OnUpdate("a", "a2") }, "update a2"},
		{"delete", func(l *listedLater) { l.OnDelete("b") }, "delete b"},
		{"synced first", func(l *listedLater) { l.hand(); l.OnAdd("c", false) }, "add c false"},
	} {
		t.Run(next.name, func(t *testing.T) {
			rec := &recordingLister{}
			l := &listedLater{shardedRegistration: &shardedRegistration{handler: rec}, lister: rec}
			l.OnAdd("a", true)
			l.OnAdd("b", true)
			if len(rec.got) != 0 {
				t.Fatalf("before the list is over: %q, want nothing yet", rec.got)
			}
			next.event(l)
			l.hand() // the registration synced
			if want := []string{"list [a b]", next.want}; !slices.Equal(rec.got, want) {
				t.Errorf("handed %q, want %q", rec.got, want)
			}
		})
	}
	t.Run("removed", func(t *testing.T) {
		rec := &recordingLister{}
		l := &listedLater{shardedRegistration: &shardedRegistration{handler: rec}, lister: rec}
		l.OnAdd("a", true)
		l.removed.Store(true)
		l.hand()
		if len(rec.got) != 0 {
			t.Errorf("a removed handler was handed %q", rec.got)
		}
	})
}
