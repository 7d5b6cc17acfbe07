package integration

import (
	"testing"
	"time"
)

// The scale benchmark's checkers find what they are for: the memory and
// readiness lines of its replicas, the write time a call saw, the latency
// of each change (from its write to the first call that saw it or a later
// one, unseen if none did), and the apiserver's request counts.
func TestScaleCheckers(t *testing.T) {
	ev := newEvents()
	for _, line := range []string{
		"M a 10 base 100 100 2048 2048",
		"M a 20 tick 300 900 4096 8192",
		"M a 30 tick 200 900 4096 8192",
		"Y a 25",
		// u1: written at 100 and 200; the first call saw 100 only, the
		// second both; a call of u2 saw nothing written.
		"S a u1 150 1 7 1 100", "E a u1 151 1 1",
		"S a u1 260 1 8 2 200", "E a u1 261 2 1",
		"S a u2 300 1 3 3 -", "E a u2 301 3 1",
	} {
		ev.add(line)
	}
	if m, ok := ev.memoryOf("a", "tick"); !ok || m.at != 30 || m.heap != 200 || m.peakHeap != 900 || m.rss != 4096 || m.hwm != 8192 {
		t.Errorf("last tick of a: %+v, %v; want the one at 30", m, ok)
	}
	if m, ok := ev.memoryOf("a", "base"); !ok || m.heap != 100 {
		t.Errorf("base of a: %+v, %v", m, ok)
	}
	if _, ok := ev.memoryOf("a", "gc"); ok {
		t.Error("a gc line was never reported, yet found")
	}
	if at, ok := ev.readyAt("a"); !ok || at != 25 {
		t.Errorf("a ready at %d, %v; want 25", at, ok)
	}
	if last := ev.lastStart(); last != 300 {
		t.Errorf("last start %d, want 300", last)
	}

	uids := map[string]string{"cm-1": "u1", "cm-2": "u2"}
	changes := []change{{"cm-1", 100}, {"cm-1", 120}, {"cm-1", 200}, {"cm-2", 250}, {"cm-1", 5000}}
	lat, unseen := ev.latencies(changes, uids, 0, 1000)
	// 100 -> 150; 120 -> 260 (the first call saw only 100); 200 -> 260;
	// cm-2's change was never seen; 5000 is outside the window.
	want := []time.Duration{50, 60, 140}
	if len(lat) != len(want) || unseen != 1 {
		t.Fatalf("latencies %v, unseen %d; want %v, 1", lat, unseen, want)
	}
	for i := range want {
		if lat[i] != want[i] {
			t.Errorf("latencies %v, want %v", lat, want)
			break
		}
	}
	if p := percentile(lat, 0.5); p != 60 {
		t.Errorf("p50 of %v = %v, want 60ns", lat, p)
	}
	if p := percentile(lat, 0.99); p != 140 {
		t.Errorf("p99 of %v = %v, want 140ns", lat, p)
	}

	w := &slotWatch{slots: 3, history: [][]holding{
		{{10, "a"}, {50, ""}, {60, "b"}},
		{{10, "a"}, {40, "b"}},
		{{20, "a"}, {40, "c"}},
	}}
	if peak := w.peakHeld(); peak["a"] != 3 || peak["b"] != 2 || peak["c"] != 1 {
		t.Errorf("most slots held at once: %v, want a 3, b 2, c 1", peak)
	}

	raw := []byte(`# HELP apiserver_request_total [STABLE] Counter of apiserver requests
apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 40
apiserver_request_total{code="409",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 2
apiserver_request_total{code="201",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="POST",version="v1"} 8
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="configmaps",scope="namespace",subresource="",verb="LIST",version="v1"} 5
apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="namespace",subresource="",verb="LIST",version="v1"} 7
apiserver_request_duration_seconds_count{resource="leases",verb="PUT"} 1000
`)
	before := parseRequests([]byte(`apiserver_request_total{resource="leases",verb="PUT"} 12`))
	after := parseRequests(raw)
	if got := rate(before, after, 10*time.Second, "leases", writeVerbs...); got != 3.8 {
		t.Errorf("Lease writes/s %v, want (42+8-12)/10 = 3.8", got)
	}
	if got := rate(before, after, time.Second, "", "LIST"); got != 12 {
		t.Errorf("LISTs/s %v, want 12", got)
	}
}
