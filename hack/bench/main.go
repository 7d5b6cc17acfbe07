// Command bench prints kubehandler's EventLoop beside a plain client-go
// workqueue loop on the same informer workloads, in one run. See
// internal/bench for the workloads. Run it with `make bench`.
package main

import (
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"k8s.io/klog/v2"

	"github.com/kubehandler/kubehandler/hack/bench/internal/bench"
)

func main() {
	objects := flag.Int("objects", 20000, "objects in the initial list")
	listRounds := flag.Int("list-rounds", 21, "rounds of the initial list (60ms each: noisy, so many); the median is reported")
	rounds := flag.Int("rounds", 7, "rounds of the storm and latency workloads; the median is reported")
	keys := flag.Int("storm-keys", 100, "keys in the update storm")
	updates := flag.Int("storm-updates", 200, "updates per key in the update storm")
	rate := flag.Int("rate", 2000, "events per second in the latency workload")
	latencyFor := flag.Duration("latency-duration", 3*time.Second, "how long the latency workload sends")
	flag.Parse()
	klog.SetOutput(os.Stderr)

	fmt.Printf("kubehandler vs plain client-go workqueue loop: threadiness %d, medians of %d list rounds and %d rounds of the rest\n\n",
		bench.Threadiness, *listRounds, *rounds)
	report := bench.Run(bench.Config{
		Objects: *objects, ListRounds: *listRounds, Rounds: *rounds,
		StormKeys: *keys, StormUpdates: *updates, StormWork: time.Millisecond,
		Rate: *rate, LatencyDuration: *latencyFor,
	}, func(line string) { fmt.Fprintln(os.Stderr, line) })
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	report.Print(w)
	w.Flush()
	if !report.OK() {
		fmt.Println("\nFAIL: a target was missed (see the rows marked MISSED)")
		os.Exit(1)
	}
}
