package kubehandler

import (
	"fmt"
	"testing"
)

// BenchmarkDebugReport measures a DebugHandler request's snapshot of a queue
// of 100 000 keys, most of it under the queue's lock: what the doc of
// DebugHandler states it costs the loop.
func BenchmarkDebugReport(b *testing.B) {
	q := newWorkQueue("bench", nil)
	for i := range 100_000 {
		q.enqueue("k", addEvent, fmt.Sprintf("ns/name-%d", i), highLane)
	}
	for b.Loop() {
		if rep := q.debugReport(DefaultDebugMaxKeys); rep.Depth != 100_000 {
			b.Fatalf("depth %d", rep.Depth)
		}
	}
}
