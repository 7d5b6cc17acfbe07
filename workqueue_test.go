package kubehandler_test

import (
	"context"
	"sync"
	"testing"

	"k8s.io/client-go/tools/cache"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// WorkQueue works standalone, as in v2: an event enqueued before Run waits
// (Length 1), and the handler registered for it is called once Run starts.
func TestWorkQueueStandalone(t *testing.T) {
	q := kubehandler.NewWorkQueue("standalone")
	q.EnqueueAdd("Deployment", configMap("ns", "web", "1"))
	if n := q.Length(); n != 1 {
		t.Fatalf("Length() before Run = %d, want 1", n)
	}
	var mu sync.Mutex
	var got []string
	handler := func(typ string) kubehandler.WorkQueueHandler {
		return func(ctx context.Context, namespace, name string) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, typ+" "+namespace+"/"+name)
			return nil
		}
	}
	q.RegisterAddHandler("Deployment", handler("add"))
	q.RegisterUpdateHandler("Deployment", handler("update"))
	q.RegisterDeleteHandler("Deployment", handler("delete"))
	synced := false
	q.AddSynced(func() bool { mu.Lock(); defer mu.Unlock(); synced = true; return true })

	kubehandlertest.Start(t, q, 2)
	eventually(t, "add dispatched", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	q.EnqueueUpdate("Deployment", cache.ExplicitKey("ns/web"))
	eventually(t, "update dispatched", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 })
	q.EnqueueDelete("Deployment", cache.DeletedFinalStateUnknown{Key: "ns/web"})
	eventually(t, "delete dispatched", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 })

	mu.Lock()
	defer mu.Unlock()
	want := []string{"add ns/web", "update ns/web", "delete ns/web"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("call %d = %q, want %q", i, got[i], want[i])
		}
	}
	if !synced {
		t.Error("Run did not consult the AddSynced function")
	}
	if n := q.Length(); n != 0 {
		t.Errorf("Length() after dispatch = %d, want 0", n)
	}
}

// Keys are structs, so names with ':' and cluster-scoped objects survive,
// and different kinds of one name are different keys.
func TestWorkQueueKeys(t *testing.T) {
	q := kubehandler.NewWorkQueue("keys")
	var mu sync.Mutex
	var got []kubehandler.Key
	record := func(ctx context.Context, namespace, name string) error {
		ev, _ := kubehandler.EventFromContext(ctx)
		mu.Lock()
		defer mu.Unlock()
		got = append(got, ev.Key)
		return nil
	}
	q.RegisterAddHandler("ClusterRole", record)
	q.RegisterAddHandler("Role", record)
	q.EnqueueAdd("ClusterRole", cache.ObjectName{Name: "system:node"})
	q.EnqueueAdd("Role", "ns/system:node")
	q.EnqueueAdd("Role", "not/a/key") // refused, logged
	if n := q.Length(); n != 2 {
		t.Fatalf("Length() = %d, want 2", n)
	}
	kubehandlertest.Start(t, q, 1)
	eventually(t, "dispatched", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 })
	mu.Lock()
	defer mu.Unlock()
	want := map[kubehandler.Key]bool{
		{Kind: "ClusterRole", Name: "system:node"}:           true,
		{Kind: "Role", Namespace: "ns", Name: "system:node"}: true,
	}
	for _, k := range got {
		if !want[k] {
			t.Errorf("unexpected key %#v", k)
		}
	}
	if s := (kubehandler.Key{Kind: "ClusterRole", Name: "system:node"}).String(); s != "ClusterRole/system:node" {
		t.Errorf("String() = %q", s)
	}
	if s := (kubehandler.Key{Kind: "Role", Namespace: "ns", Name: "a"}).String(); s != "Role/ns/a" {
		t.Errorf("String() = %q", s)
	}
}
