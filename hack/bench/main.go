// Command bench prints kubehandler's EventLoop beside a plain client-go
// workqueue loop and a controller-runtime controller on the same informer
// workloads, in one run. See internal/bench for the workloads. Run it with
// `make bench`.
//
// The initial lists (of 20,000, 100,000 and 1,000,000 objects) run each
// system in a process of its own: the bench runs itself again with
// -list-child for every measurement, so that no system inherits the heap,
// the garbage or the GC pacing of the one before it. -in-process runs them
// in one process instead, to compare.
package main

import (
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kubehandler/kubehandler/hack/bench/internal/bench"
)

func main() {
	objects := flag.Int("objects", 20000, "objects in the initial list")
	listRounds := flag.Int("list-rounds", 21, "rounds of the initial list (60ms each: noisy, so many); the median is reported")
	largeObjects := flag.Int("large-objects", 100000, "objects in the large initial list (0 skips it)")
	largeRounds := flag.Int("large-rounds", 5, "rounds of the large initial list")
	millionObjects := flag.Int("million-objects", 1000000, "objects in the largest initial list (0 skips it)")
	millionRounds := flag.Int("million-rounds", 3, "rounds of the largest initial list")
	inProcess := flag.Bool("in-process", false, "run the initial lists in this process, one system after the other, instead of each in a process of its own")
	child := flag.String(bench.ChildFlag, "", "measure one initial list, impl:objects, and print it as JSON (what the bench runs in its child processes)")
	rounds := flag.Int("rounds", 7, "rounds of the storm and latency workloads; the median is reported")
	keys := flag.Int("storm-keys", 100, "keys in the update storm")
	updates := flag.Int("storm-updates", 200, "updates per key in the update storm")
	rate := flag.Int("rate", 2000, "events per second in the latency workload")
	latencyFor := flag.Duration("latency-duration", 3*time.Second, "how long the latency workload sends")
	backlog := flag.Int("backlog-objects", 10000, "objects in the initial list of the backlog workload (0 skips it)")
	backlogLive := flag.Int("backlog-live", 50, "live objects created once the backlog's informer has synced")
	backlogRate := flag.Int("backlog-rate", 100, "live creations per second in the backlog workload")
	backlogWork := flag.Duration("backlog-work", time.Millisecond, "how long each handler call of the backlog workload works")
	backlogRounds := flag.Int("backlog-rounds", 3, "rounds of the backlog workload")
	flag.Parse()
	klog.SetOutput(os.Stderr)
	ctrllog.SetLogger(logr.Discard())
	if *child != "" {
		if err := bench.RunChild(*child, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		return
	}

	where := "each system's initial lists in a process of its own"
	if *inProcess {
		where = "every system in this process"
	}
	fmt.Printf("kubehandler vs plain client-go workqueue loop and controller-runtime: threadiness %d, medians of %d list rounds (%d of the large list, %d of the million), %d rounds of storm and latency, %d of backlog; %s\n\n",
		bench.Threadiness, *listRounds, *largeRounds, *millionRounds, *rounds, *backlogRounds, where)
	report, err := bench.Run(bench.Config{
		Objects: *objects, ListRounds: *listRounds, LargeObjects: *largeObjects, LargeRounds: *largeRounds,
		MillionObjects: *millionObjects, MillionRounds: *millionRounds, InProcess: *inProcess,
		Rounds: *rounds, StormKeys: *keys, StormUpdates: *updates, StormWork: time.Millisecond,
		Rate: *rate, LatencyDuration: *latencyFor,
		BacklogObjects: *backlog, BacklogLive: *backlogLive, BacklogRate: *backlogRate,
		BacklogWork: *backlogWork, BacklogRounds: *backlogRounds,
	}, func(line string) { fmt.Fprintln(os.Stderr, line) })
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	report.Print(w)
	w.Flush()
	if !report.OK() {
		fmt.Println("\nFAIL: a target was missed (see the rows marked MISSED)")
		os.Exit(1)
	}
}
