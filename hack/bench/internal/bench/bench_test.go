package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.uber.org/goleak"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	goleak.VerifyTestMain(m)
}

// The benchmarks run each workload for each Impl; compare the sub-benchmarks
// of one run (benchstat, or by eye). `make bench` prints the same workloads
// as a table with the targets.

func BenchmarkInitialList(b *testing.B) {
	for _, impl := range Impls {
		b.Run(string(impl), func(b *testing.B) {
			var objects, allocs float64
			for range b.N {
				r := InitialList(impl, 20000)
				objects += r.ObjectsPerSecond
				allocs += r.AllocsPerObject
			}
			b.ReportMetric(objects/float64(b.N), "objects/s")
			b.ReportMetric(allocs/float64(b.N), "allocs/object")
		})
	}
}

// BenchmarkUpdateStorm runs every Impl at once on one informer (see
// UpdateStorm) and reports each one's calls.
func BenchmarkUpdateStorm(b *testing.B) {
	calls := make(map[Impl]float64)
	for range b.N {
		for impl, r := range UpdateStorm(Impls, 100, 200, time.Millisecond) {
			if !r.Final {
				b.Fatalf("%s: a key did not end on its final version", impl)
			}
			calls[impl] += float64(r.Calls)
		}
	}
	for _, impl := range Impls {
		b.ReportMetric(calls[impl]/float64(b.N), string(impl)+"-calls")
	}
}

func BenchmarkLatency(b *testing.B) {
	for _, impl := range Impls {
		b.Run(string(impl), func(b *testing.B) {
			var p50, p99 float64
			for range b.N {
				r := Latency(impl, 2000, time.Second)
				p50 += float64(r.P50.Microseconds())
				p99 += float64(r.P99.Microseconds())
			}
			b.ReportMetric(p50/float64(b.N), "p50-µs")
			b.ReportMetric(p99/float64(b.N), "p99-µs")
		})
	}
}

// TestWorkloadsRun checks, at a small size, that every workload completes
// for every Impl and that the storm ends on the final versions; the figures
// themselves are for `make bench`.
func TestWorkloadsRun(t *testing.T) {
	for _, impl := range BacklogImpls {
		if r := InitialList(impl, 500); r.ObjectsPerSecond <= 0 {
			t.Errorf("%s: initial list %+v", impl, r)
		}

		if r := Latency(impl, 500, 200*time.Millisecond); r.Handled == 0 {
			t.Errorf("%s: latency %+v", impl, r)
		}
		if r := Backlog(impl, 200, 5, 500, 100*time.Microsecond); r.LiveHandled != 5 || r.Drained <= 0 {
			t.Errorf("%s: backlog %+v", impl, r)
		}
	}
	for impl, r := range UpdateStorm(Impls, 10, 20, 100*time.Microsecond) {
		if !r.Final || r.Calls < 10 {
			t.Errorf("%s: storm %+v", impl, r)
		}
	}
}

// RunChild measures the list its flag names and prints it as JSON, which
// InitialListInChild reads back; a value it cannot read is an error.
func TestRunChild(t *testing.T) {
	var out bytes.Buffer
	if err := RunChild("plain:200", &out); err != nil {
		t.Fatal(err)
	}
	var r ListResult
	if err := json.Unmarshal(out.Bytes(), &r); err != nil || r.Objects != 200 || r.ObjectsPerSecond <= 0 {
		t.Errorf("RunChild printed %q: %+v, %v", out.String(), r, err)
	}
	for _, bad := range []string{"plain", "nosuch:200", "plain:x"} {
		if err := RunChild(bad, io.Discard); err == nil {
			t.Errorf("RunChild(%q) = nil, want an error", bad)
		}
	}
}
