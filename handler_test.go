package kubehandler_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"k8s.io/klog/v2"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// logLines is a logger that keeps what it logs.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, args)
	}, funcr.Options{})
}

func (l *logLines) find(sub string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, sub) {
			return line
		}
	}
	return ""
}

// The handler's context carries a logger with the handler name, namespace,
// name and event type, derived from the logger of Run's context.
func TestHandlerContextLogger(t *testing.T) {
	for _, how := range []string{"context", "WithLogger"} {
		t.Run(how, func(t *testing.T) {
			f := newFixture(t)
			h := newRecorder(f.informer, "cms")
			h.Fn = func(ctx context.Context, ev kubehandler.Event) error {
				klog.FromContext(ctx).Info("reconciling")
				return nil
			}
			var logs logLines
			var opts []kubehandler.Option
			ctx := t.Context()
			if how == "WithLogger" {
				opts = append(opts, kubehandler.WithLogger(logs.logger()))
			} else {
				ctx = klog.NewContext(ctx, logs.logger())
			}
			loop := kubehandler.NewEventLoop("logging", opts...)
			loop.Register(h)
			ctx, cancel := context.WithCancel(ctx)
			errc := make(chan error, 1)
			go func() { errc <- loop.Run(ctx, 1) }()
			f.source.Create(configMap("ns", "a", "1"))
			eventually(t, "logged", func() bool { return logs.find("reconciling") != "" })
			cancel()
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			line := logs.find("reconciling")
			for _, want := range []string{`"queue"="logging"`, `"handler"="cms"`, `"namespace"="ns"`, `"name"="a"`, `"event"="add"`} {
				if !strings.Contains(line, want) {
					t.Errorf("log line %s lacks %s", line, want)
				}
			}
		})
	}
}

// EventFromContext works in contexts derived from the handler's, and not
// outside a call.
func TestEventFromContext(t *testing.T) {
	if _, ok := kubehandler.EventFromContext(t.Context()); ok {
		t.Error("EventFromContext found an Event outside a handler call")
	}
	q := kubehandler.NewWorkQueue("event")
	got := make(chan kubehandler.Event, 1)
	q.RegisterAddHandler("k", func(ctx context.Context, namespace, name string) error {
		derived, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		ev, _ := kubehandler.EventFromContext(derived)
		got <- ev
		return nil
	})
	obj := configMap("ns", "a", "1")
	q.EnqueueAdd("k", obj)
	kubehandlertest.Start(t, q, 1)
	ev := <-got
	if ev.Type != kubehandler.WorkqueueAddEvent || ev.Key != (kubehandler.Key{Kind: "k", Namespace: "ns", Name: "a"}) || ev.Object != obj || ev.Retries != 0 {
		t.Errorf("Event = %+v", ev)
	}
}
