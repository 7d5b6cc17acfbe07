package bench

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// Config sizes the workloads.
type Config struct {
	Objects         int // InitialList
	ListRounds      int // rounds of InitialList (short and noisy: many)
	Rounds          int // rounds of the storm and latency workloads; medians are reported
	StormKeys       int
	StormUpdates    int
	StormWork       time.Duration
	Rate            int // Latency
	LatencyDuration time.Duration
}

// Report holds the medians of every workload for every Impl.
type Report struct {
	List    map[Impl]ListResult
	Storm   map[Impl]StormResult
	Latency map[Impl]LatencyResult
	rows    []row
}

type row struct {
	what, kh, plain, plainSync, target string
	ok                                 bool
}

// Run runs every workload cfg.Rounds times for every Impl, rotating the
// order of the Impls from round to round so that none always runs first,
// and returns the medians. progress receives a line per measurement.
func Run(cfg Config, progress func(string)) *Report {
	lists := make(map[Impl][]ListResult)
	storms := make(map[Impl][]StormResult)
	lats := make(map[Impl][]LatencyResult)
	for round := range cfg.ListRounds {
		for i := range Impls {
			impl := Impls[(i+round)%len(Impls)]
			l := InitialList(impl, cfg.Objects)
			lists[impl] = append(lists[impl], l)
			progress(fmt.Sprintf("round %d %-15s list: %8.0f objects/s, %.1f allocs/object, %v CPU/object",
				round+1, impl, l.ObjectsPerSecond, l.AllocsPerObject, l.CPUPerObject))
		}
	}
	for round := range cfg.Rounds {
		order := slices.Concat(Impls[round%len(Impls):], Impls[:round%len(Impls)])
		rs := UpdateStorm(order, cfg.StormKeys, cfg.StormUpdates, cfg.StormWork)
		for _, impl := range Impls {
			s := rs[impl]
			storms[impl] = append(storms[impl], s)
			progress(fmt.Sprintf("round %d %-15s storm: %d calls for %d updates, final %v", round+1, impl, s.Calls, s.Updates, s.Final))
		}
		for i := range Impls {
			impl := Impls[(i+round)%len(Impls)]
			l := Latency(impl, cfg.Rate, cfg.LatencyDuration)
			lats[impl] = append(lats[impl], l)
			progress(fmt.Sprintf("round %d %-15s latency: p50 %v p99 %v (%d handled)", round+1, impl, l.P50, l.P99, l.Handled))
		}
	}
	r := &Report{List: map[Impl]ListResult{}, Storm: map[Impl]StormResult{}, Latency: map[Impl]LatencyResult{}}
	for _, impl := range Impls {
		r.List[impl] = ListResult{
			Objects:          cfg.Objects,
			ObjectsPerSecond: median(lists[impl], func(l ListResult) float64 { return l.ObjectsPerSecond }),
			AllocsPerObject:  median(lists[impl], func(l ListResult) float64 { return l.AllocsPerObject }),
			CPUPerObject:     time.Duration(median(lists[impl], func(l ListResult) float64 { return float64(l.CPUPerObject) })),
		}
		final := true
		for _, s := range storms[impl] {
			final = final && s.Final
		}
		r.Storm[impl] = StormResult{
			Updates: cfg.StormKeys * cfg.StormUpdates,
			Calls:   int64(median(storms[impl], func(s StormResult) float64 { return float64(s.Calls) })),
			Final:   final,
		}
		r.Latency[impl] = LatencyResult{
			Events: lats[impl][0].Events,
			P50:    time.Duration(median(lats[impl], func(l LatencyResult) float64 { return float64(l.P50) })),
			P90:    time.Duration(median(lats[impl], func(l LatencyResult) float64 { return float64(l.P90) })),
			P99:    time.Duration(median(lats[impl], func(l LatencyResult) float64 { return float64(l.P99) })),
		}
	}
	r.evaluate(cfg)
	return r
}

func median[T any](xs []T, f func(T) float64) float64 {
	vs := make([]float64, len(xs))
	for i, x := range xs {
		vs[i] = f(x)
	}
	slices.Sort(vs)
	if len(vs) == 0 {
		return 0
	}
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}

// evaluate builds the rows and checks the targets.
func (r *Report) evaluate(cfg Config) {
	kh, p, ps := r.List[Kubehandler], r.List[Plain], r.List[PlainWaitSync]
	r.rows = append(r.rows,
		row{fmt.Sprintf("initial list of %d: objects/s", cfg.Objects),
			fmt.Sprintf("%.0f", kh.ObjectsPerSecond), fmt.Sprintf("%.0f", p.ObjectsPerSecond), fmt.Sprintf("%.0f", ps.ObjectsPerSecond), "", true},
		row{"  throughput ratio, kubehandler / plain",
			fmt.Sprintf("%.2f", kh.ObjectsPerSecond/p.ObjectsPerSecond), "", "", ">= 0.85", kh.ObjectsPerSecond >= 0.85*p.ObjectsPerSecond},
		row{"  throughput ratio, kubehandler / plain-waitsync",
			fmt.Sprintf("%.2f", kh.ObjectsPerSecond/ps.ObjectsPerSecond), "", "", ">= 0.85", kh.ObjectsPerSecond >= 0.85*ps.ObjectsPerSecond},
		row{"  CPU time per object (all threads, GC included)",
			kh.CPUPerObject.String(), p.CPUPerObject.String(), ps.CPUPerObject.String(), "", true},
		row{"  allocations per object (informer included)",
			fmt.Sprintf("%.1f", kh.AllocsPerObject), fmt.Sprintf("%.1f", p.AllocsPerObject), fmt.Sprintf("%.1f", ps.AllocsPerObject),
			fmt.Sprintf("<= plain + 5 (%.1f)", p.AllocsPerObject+5), kh.AllocsPerObject <= p.AllocsPerObject+5},
	)
	sk, sp, sps := r.Storm[Kubehandler], r.Storm[Plain], r.Storm[PlainWaitSync]
	r.rows = append(r.rows,
		row{fmt.Sprintf("update storm, %d keys x %d updates, %s handler: calls", cfg.StormKeys, cfg.StormUpdates, cfg.StormWork),
			fmt.Sprint(sk.Calls), fmt.Sprint(sp.Calls), fmt.Sprint(sps.Calls),
			fmt.Sprintf("<= plain (%d)", sp.Calls), sk.Calls <= sp.Calls},
		row{"  every key's last call saw its final version",
			fmt.Sprint(sk.Final), fmt.Sprint(sp.Final), fmt.Sprint(sps.Final), "true", sk.Final},
	)
	lk, lp, lps := r.Latency[Kubehandler], r.Latency[Plain], r.Latency[PlainWaitSync]
	r.rows = append(r.rows,
		row{fmt.Sprintf("latency at %d events/s: p50", cfg.Rate), lk.P50.String(), lp.P50.String(), lps.P50.String(), "", true},
		row{"  p90", lk.P90.String(), lp.P90.String(), lps.P90.String(), "", true},
		row{"  p99", lk.P99.String(), lp.P99.String(), lps.P99.String(),
			fmt.Sprintf("<= 1.5 x plain (%v)", time.Duration(1.5*float64(lp.P99)).Round(time.Microsecond)), float64(lk.P99) <= 1.5*float64(lp.P99)},
		row{"  p99 ratio, kubehandler / plain", fmt.Sprintf("%.2f", float64(lk.P99)/float64(lp.P99)), "", "", "<= 1.50", float64(lk.P99) <= 1.5*float64(lp.P99)},
	)
}

// OK reports whether every target was reached.
func (r *Report) OK() bool {
	for _, row := range r.rows {
		if !row.ok {
			return false
		}
	}
	return true
}

// Print writes the report as a table (w is usually a tabwriter).
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "workload\tkubehandler\tplain\tplain-waitsync\ttarget\t\n")
	for _, row := range r.rows {
		status := ""
		if row.target != "" {
			status = "ok"
			if !row.ok {
				status = "MISSED"
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s %s\t\n", row.what, row.kh, row.plain, row.plainSync, row.target, status)
	}
}
