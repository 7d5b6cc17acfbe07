package kubehandler_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// families is a registry's metrics, read back by name and labels.
type families map[string]*dto.MetricFamily

func newRegistry() (*prometheus.Registry, func() families) {
	reg := prometheus.NewPedanticRegistry()
	return reg, func() families {
		mfs, err := reg.Gather()
		if err != nil {
			panic(err)
		}
		out := make(families)
		for _, mf := range mfs {
			out[mf.GetName()] = mf
		}
		return out
	}
}

// find returns the metric of family name whose labels include want.
func (f families) find(name string, want map[string]string) *dto.Metric {
	mf := f[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value returns the value of a counter or gauge labelled with the queue name.
func (f families) value(name, queue string) float64 {
	m := f.find(name, map[string]string{"name": queue})
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return -1
}

func (f families) calls(queue, handler, event, result string) float64 {
	m := f.find("kubehandler_handler_calls_total", map[string]string{"name": queue, "handler": handler, "event": event, "result": result})
	if m == nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	h := newRecorder(f.informer, "cm")
	failedOnce := false
	h.Fn = func(ctx context.Context, ev kubehandler.Event) error {
		switch ev.Key.Name {
		case "fails-once":
			if !failedOnce {
				failedOnce = true
				return errors.New("once")
			}
		case "panics":
			if ev.Retries == 0 {
				panic("once")
			}
		case "terminal":
			return kubehandler.Terminal(errors.New("never"))
		}
		return nil
	}
	reg, gather := newRegistry()
	loop := kubehandler.NewEventLoop("metrics", fastRetries(), kubehandler.WithMetrics(reg))
	loop.Register(h)
	kubehandlertest.Start(t, loop, 1)

	f.source.Create(configMap("ns", "ok", "1"))
	eventually(t, "add of ok dispatched", func() bool { return len(h.Calls()) == 1 })
	f.source.Delete("ns", "ok")
	for _, name := range []string{"fails-once", "panics", "terminal"} {
		f.source.Create(configMap("ns", name, "1"))
	}
	eventually(t, "all calls counted", func() bool {
		g := gather()
		return g.calls("metrics", "cm", "add", "success") == 3 && g.calls("metrics", "cm", "delete", "success") == 1 &&
			g.calls("metrics", "cm", "add", "error") == 1 && g.calls("metrics", "cm", "add", "panic") == 1 &&
			g.calls("metrics", "cm", "add", "terminal") == 1
	})
	g := gather()
	for name, want := range map[string]float64{
		"workqueue_adds_total":    7, // 5 events + 2 retries
		"workqueue_retries_total": 2,
		"workqueue_depth":         0,
	} {
		if got := g.value(name, "metrics"); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	for _, name := range []string{"workqueue_queue_duration_seconds", "workqueue_work_duration_seconds"} {
		m := g.find(name, map[string]string{"name": "metrics"})
		if m == nil || m.GetHistogram().GetSampleCount() != 7 {
			t.Errorf("%s: %v, want 7 samples", name, m)
		}
	}
	for _, name := range []string{"workqueue_unfinished_work_seconds", "workqueue_longest_running_processor_seconds"} {
		if g.find(name, map[string]string{"name": "metrics"}) == nil {
			t.Errorf("%s is not registered", name)
		}
	}
	d := g.find("kubehandler_handler_duration_seconds", map[string]string{"name": "metrics", "handler": "cm", "event": "add"})
	if d == nil || d.GetHistogram().GetSampleCount() != 6 {
		t.Errorf("kubehandler_handler_duration_seconds{event=add}: %v, want 6 samples", d)
	}
}

// Two loops on one registerer share the collectors, each with its own name.
func TestMetricsSharedRegistry(t *testing.T) {
	reg, gather := newRegistry()
	var loops []kubehandler.WorkQueue
	for _, name := range []string{"first", "second"} {
		q := kubehandler.NewWorkQueue(name, kubehandler.WithMetrics(reg))
		q.RegisterAddHandler("k", func(context.Context, string, string) error { return nil })
		q.EnqueueAdd("k", "ns/a")
		loops = append(loops, q)
	}
	for _, q := range loops {
		r := kubehandlertest.Start(t, q, 1)
		eventually(t, "dispatched", func() bool { return q.Length() == 0 })
		if err := r.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	g := gather()
	for _, name := range []string{"first", "second"} {
		if got := g.calls(name, "k", "add", "success"); got != 1 {
			t.Errorf("calls of %s = %v, want 1", name, got)
		}
	}
}

// Without WithMetrics nothing is registered on the default registerer.
func TestNoMetricsByDefault(t *testing.T) {
	q := kubehandler.NewWorkQueue("quiet")
	q.RegisterAddHandler("k", func(context.Context, string, string) error { return nil })
	q.EnqueueAdd("k", "ns/a")
	r := kubehandlertest.Start(t, q, 1)
	eventually(t, "dispatched", func() bool { return q.Length() == 0 })
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if n := mf.GetName(); strings.HasPrefix(n, "workqueue_") || strings.HasPrefix(n, "kubehandler_") {
			t.Errorf("%s registered on the default registry", n)
		}
	}
}
