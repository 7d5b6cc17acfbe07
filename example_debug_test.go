package kubehandler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"k8s.io/client-go/util/workqueue"

	"github.com/kubehandler/kubehandler"
)

// DebugHandler is mounted next to /metrics. Here a handler fails on one key;
// the report (?format=json, a DebugReport) shows the key in backoff with its
// retry count and last error.
func ExampleDebugHandler() {
	queue := kubehandler.NewWorkQueue("example",
		// A long backoff, so that the key waits for its first retry.
		kubehandler.WithRateLimiter(workqueue.NewTypedItemExponentialFailureRateLimiter[kubehandler.Key](time.Hour, time.Hour)))
	queue.RegisterAddHandler("configmaps", func(ctx context.Context, namespace, name string) error {
		return errors.New("configmap default/settings: quota exceeded")
	})
	queue.EnqueueAdd("configmaps", "default/settings")

	mux := http.NewServeMux()
	mux.Handle("/debug/kubehandler", kubehandler.DebugHandler(queue))
	server := httptest.NewServer(mux)
	defer server.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- queue.Run(ctx, 1) }()

	var report kubehandler.DebugReport
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get(server.URL + "/debug/kubehandler?format=json")
		if err != nil {
			panic(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&report)
		resp.Body.Close()
		if err != nil {
			panic(err)
		}
		if len(report.Handlers) == 1 && len(report.Handlers[0].Backoff) == 1 {
			break
		}
	}
	h := report.Handlers[0]
	b := h.Backoff[0]
	fmt.Printf("queue %s is %s; handler %s has %d key waiting\n", report.Queue, report.State, h.Name, h.Depth)
	fmt.Printf("in backoff: %s/%s, %s event, %d retry, next attempt in about %.0f minutes\n",
		b.Namespace, b.Name, b.Event, b.Retries, b.DueInSeconds/60)
	fmt.Println("last error:", b.LastError)

	cancel()
	fmt.Println("Run returned:", <-done)
	// Output:
	// queue example is dispatching; handler configmaps has 1 key waiting
	// in backoff: default/settings, add event, 1 retry, next attempt in about 60 minutes
	// last error: configmap default/settings: quota exceeded
	// Run returned: <nil>
}
