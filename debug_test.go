package kubehandler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// debugServer serves h until the test ends.
func debugServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// get returns the status and body of a GET of url.
func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

// report fetches and decodes the JSON report of srv.
func report(t *testing.T, srv *httptest.Server) kubehandler.DebugReport {
	t.Helper()
	status, header, body := get(t, srv.URL+"?format=json")
	if status != http.StatusOK || header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET ?format=json = %d %s:\n%s", status, header.Get("Content-Type"), body)
	}
	var rep kubehandler.DebugReport
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields() // the documented fields are all there is
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("decoding the report: %v\n%s", err, body)
	}
	return rep
}

// handlerState returns the part of rep of handler name, empty if rep has
// none (the loop has not hooked its handlers yet).
func handlerState(t *testing.T, rep kubehandler.DebugReport, name string) kubehandler.DebugHandlerState {
	t.Helper()
	for _, h := range rep.Handlers {
		if h.Name == name {
			return h
		}
	}
	return kubehandler.DebugHandlerState{}
}

// TestDebugHandler runs a loop on a fake clock with a failing key in
// backoff, two stuck calls and a backlog, and checks the report shows each,
// exactly; then that it follows the loop as the calls return and the
// failing key recovers.
func TestDebugHandler(t *testing.T) {
	f := newFixture(t)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := testingclock.NewFakeClock(t0)
	h := newRecorder(f.informer, "cm")
	var failing atomic.Bool
	failing.Store(true)
	started := make(chan string, 2)
	release := make(chan struct{})
	h.Fn = func(ctx context.Context, ev kubehandler.Event) error {
		switch name := ev.Key.Name; {
		case name == "fails" && failing.Load():
			return fmt.Errorf("quota <exceeded> for %s", name)
		case strings.HasPrefix(name, "stuck-"):
			started <- name
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}
	loop := kubehandler.NewEventLoop("debug", kubehandler.WithClock(clock),
		kubehandler.WithRateLimiter(workqueue.NewTypedItemExponentialFailureRateLimiter[kubehandler.Key](time.Hour, time.Hour)))
	loop.Register(h)
	srv := debugServer(t, kubehandler.DebugHandler(loop))
	kubehandlertest.Start(t, loop, 2)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})

	f.source.Create(configMap("ns", "fails", "1"))
	eventually(t, "fails in backoff", func() bool { return len(handlerState(t, report(t, srv), "cm").Backoff) == 1 })
	f.source.Create(configMap("ns", "stuck-a", "1"))
	if got := <-started; got != "stuck-a" {
		t.Fatalf("started %s, want stuck-a", got)
	}
	clock.Step(10 * time.Second)
	f.source.Create(configMap("ns", "stuck-b", "1"))
	if got := <-started; got != "stuck-b" {
		t.Fatalf("started %s, want stuck-b", got)
	}
	for i := 1; i <= 3; i++ {
		f.source.Create(configMap("ns", fmt.Sprintf("waiting-%d", i), "1"))
	}
	eventually(t, "a backlog of 3", func() bool { return handlerState(t, report(t, srv), "cm").Ready == 3 })
	clock.Step(5 * time.Second)
	now := t0.Add(15 * time.Second)

	want := kubehandler.DebugReport{
		Queue: "debug", Time: now, State: "dispatching", Workers: 2, Depth: 4, MaxKeys: kubehandler.DefaultDebugMaxKeys,
		Handlers: []kubehandler.DebugHandlerState{{
			Name: "cm", Depth: 4, Ready: 3,
			InFlight: []kubehandler.DebugCall{
				{Namespace: "ns", Name: "stuck-a", Event: "add", Started: t0, RunningSeconds: 15},
				{Namespace: "ns", Name: "stuck-b", Event: "add", Started: t0.Add(10 * time.Second), RunningSeconds: 5},
			},
			Backoff: []kubehandler.DebugBackoff{{
				Namespace: "ns", Name: "fails", Event: "add", Retries: 1, LastError: "quota <exceeded> for fails",
				NextAttempt: t0.Add(time.Hour), DueInSeconds: 3600 - 15,
			}},
			OldestWaiting: &kubehandler.DebugWaiting{Namespace: "ns", Name: "waiting-1", Since: t0.Add(10 * time.Second), WaitingSeconds: 5},
		}},
	}
	if diff := cmp.Diff(want, report(t, srv)); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}

	// The page shows the same, escaped, with nothing to run.
	status, header, page := get(t, srv.URL)
	if status != http.StatusOK || !strings.HasPrefix(header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET = %d %s", status, header.Get("Content-Type"))
	}
	for _, w := range []string{"<h2>Handler cm</h2>", `<td class="key">ns/fails</td>`, "quota &lt;exceeded&gt; for fails",
		`<td class="key">ns/stuck-a</td><td>add</td><td>0</td><td>15s</td>`, "ns/waiting-1</strong>, for 5s", "4 keys waiting, 3 of them ready"} {
		if !strings.Contains(page, w) {
			t.Errorf("the page lacks %s:\n%s", w, page)
		}
	}
	if strings.Contains(page, "<exceeded>") || strings.Contains(page, "<script") {
		t.Errorf("the page has unescaped text or a script:\n%s", page)
	}
	if csp := header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}

	// The calls return, the backlog drains; the failing key stays in
	// backoff until its retry succeeds.
	close(release)
	eventually(t, "the backlog dispatched", func() bool {
		s := handlerState(t, report(t, srv), "cm")
		return len(s.InFlight) == 0 && s.Ready == 0 && s.Depth == 1 && s.OldestWaiting == nil && len(s.Backoff) == 1
	})
	failing.Store(false)
	clock.Step(time.Hour)
	eventually(t, "fails recovered", func() bool {
		rep := report(t, srv)
		s := handlerState(t, rep, "cm")
		return rep.Depth == 0 && s.Depth == 0 && len(s.Backoff) == 0
	})
	if calls := h.CallsFor(kubehandler.Key{Kind: "cm", Namespace: "ns", Name: "fails"}); len(calls) != 2 || calls[1].Retries != 1 {
		t.Errorf("calls of fails = %+v, want a first call and one retry", calls)
	}
}

// manyLimiter delays the retries of key "many" by nothing, twice, and every
// other retry by an hour: "many" gets 3 retries, the others 1.
type manyLimiter struct {
	mu    sync.Mutex
	fails map[kubehandler.Key]int
}

func (l *manyLimiter) When(k kubehandler.Key) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fails[k]++
	if k.Name == "many" && l.fails[k] < 3 {
		return 0
	}
	return time.Hour
}

func (l *manyLimiter) Forget(k kubehandler.Key) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, k)
}

func (l *manyLimiter) NumRequeues(k kubehandler.Key) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fails[k]
}

// TestDebugHandlerBound checks that a section lists at most DebugMaxKeys
// keys, the ones that matter most, and counts the others.
func TestDebugHandlerBound(t *testing.T) {
	q := kubehandler.NewWorkQueue("bound", kubehandler.WithRateLimiter(&manyLimiter{fails: map[kubehandler.Key]int{}}))
	release := make(chan struct{})
	var stuck sync.WaitGroup
	stuck.Add(3)
	q.RegisterAddHandler("k", func(ctx context.Context, _, name string) error {
		if strings.HasPrefix(name, "stuck-") {
			stuck.Done()
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}
		return errors.New(strings.Repeat("x", 2000))
	})
	srv := debugServer(t, kubehandler.DebugHandler(q, kubehandler.DebugMaxKeys(2)))
	for _, name := range []string{"stuck-0", "stuck-1", "stuck-2", "f-3", "f-1", "many", "f-2", "f-0"} {
		q.EnqueueAdd("k", "ns/"+name)
	}
	kubehandlertest.Start(t, q, 4)
	stuck.Wait()
	var s kubehandler.DebugHandlerState
	eventually(t, "every failing key in backoff", func() bool {
		s = handlerState(t, report(t, srv), "k")
		return len(s.Backoff)+s.BackoffOmitted == 5 && s.Backoff[0].Retries == 3
	})
	_, _, page := get(t, srv.URL)
	close(release)
	if len(s.InFlight) != 2 || s.InFlightOmitted != 1 {
		t.Errorf("in flight: %d listed, %d omitted; want 2 and 1", len(s.InFlight), s.InFlightOmitted)
	}
	if len(s.Backoff) != 2 || s.BackoffOmitted != 3 {
		t.Fatalf("backoff: %d listed, %d omitted; want 2 and 3", len(s.Backoff), s.BackoffOmitted)
	}
	if s.Backoff[0].Name != "many" || s.Backoff[1].Retries != 1 {
		t.Errorf("backoff = %+v, want many (3 retries) first, then a key with 1", s.Backoff)
	}
	if e := s.Backoff[0].LastError; len(e) > 1024 || !strings.HasSuffix(e, "…") {
		t.Errorf("last error of %d bytes, ending %q: want it cut to 1 KiB, ending in an ellipsis", len(e), e[len(e)-5:])
	}
	for _, w := range []string{"1 more not shown.", "3 more not shown."} {
		if !strings.Contains(page, w) {
			t.Errorf("the page lacks %q", w)
		}
	}
}

// TestDebugHandlerDuringStorm reads the report and the page from several
// goroutines while a storm of events, some failing, goes through a loop
// with metrics: under -race, this is where a field read without the lock
// shows. Then the loop still ends where the objects are.
func TestDebugHandlerDuringStorm(t *testing.T) {
	f := newFixture(t)
	h := newRecorder(f.informer, "cm")
	var calls atomic.Int64
	h.Fn = func(context.Context, kubehandler.Event) error {
		if calls.Add(1)%5 == 0 {
			return errors.New("every fifth call fails")
		}
		return nil
	}
	reg, _ := newRegistry()
	loop := kubehandler.NewEventLoop("storm", fastRetries(), kubehandler.WithMetrics(reg))
	loop.Register(h)
	srv := debugServer(t, kubehandler.DebugHandler(loop, kubehandler.DebugMaxKeys(5)))
	kubehandlertest.Start(t, loop, 4)

	ctx, stop := context.WithCancel(t.Context())
	var readers sync.WaitGroup
	var reads atomic.Int64
	for i := range 4 {
		readers.Go(func() {
			url := srv.URL + "?format=json"
			if i%2 == 1 {
				url = srv.URL
			}
			for ctx.Err() == nil {
				resp, err := http.Get(url)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("GET %s = %d", url, resp.StatusCode)
					return
				}
				reads.Add(1)
			}
		})
	}

	names := map[cache.ObjectName]bool{}
	for i := range 50 {
		name := fmt.Sprintf("cm-%d", i)
		names[cache.ObjectName{Namespace: "ns", Name: name}] = true
		f.source.Create(configMap("ns", name, "0"))
	}
	for round := 1; round <= 20; round++ {
		for i := range 50 {
			f.source.Update(configMap("ns", fmt.Sprintf("cm-%d", i), fmt.Sprint(round)))
		}
	}
	for i := range 10 {
		f.source.Delete("ns", fmt.Sprintf("cm-%d", i))
	}
	eventually(t, "the last calls match the objects", func() bool {
		ok, _ := h.Matches(sourceState("cm", f.source, names))
		return ok
	})
	stop()
	readers.Wait()
	if reads.Load() == 0 {
		t.Error("no report was read during the storm")
	}
	eventually(t, "an empty report", func() bool {
		rep := report(t, srv)
		s := handlerState(t, rep, "cm")
		return rep.Depth == 0 && len(s.InFlight) == 0 && len(s.Backoff) == 0
	})
	if o := h.Overlaps(); len(o) > 0 {
		t.Errorf("overlapping calls for %v", o)
	}
}

// otherLoop is a Loop this package did not make.
type otherLoop struct{}

func (otherLoop) Run(context.Context, int) error { return nil }

func TestDebugHandlerRequests(t *testing.T) {
	q := kubehandler.NewWorkQueue("idle")
	q.RegisterAddHandler("k", func(context.Context, string, string) error { return nil })
	q.EnqueueAdd("k", "ns/a")
	q.EnqueueAdd("other", "b") // a kind without a handler is listed too
	srv := debugServer(t, kubehandler.DebugHandler(q))

	want := kubehandler.DebugReport{Queue: "idle", State: "stopped", Depth: 2, MaxKeys: kubehandler.DefaultDebugMaxKeys,
		Handlers: []kubehandler.DebugHandlerState{
			{Name: "k", Depth: 1, InFlight: []kubehandler.DebugCall{}, Backoff: []kubehandler.DebugBackoff{}},
			{Name: "other", Depth: 1, InFlight: []kubehandler.DebugCall{}, Backoff: []kubehandler.DebugBackoff{}},
		}}
	got := report(t, srv)
	got.Time = time.Time{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report of a loop that is not running (-want +got):\n%s", diff)
	}

	tests := []struct {
		name    string
		handler http.Handler
		method  string
		query   string
		status  int
		body    string
	}{
		{"html", kubehandler.DebugHandler(q), http.MethodGet, "", http.StatusOK, "<h2>Handler other</h2>"},
		{"html asked", kubehandler.DebugHandler(q), http.MethodGet, "?format=html", http.StatusOK, "State: <strong>stopped</strong>"},
		{"head", kubehandler.DebugHandler(q), http.MethodHead, "", http.StatusOK, ""},
		{"post", kubehandler.DebugHandler(q), http.MethodPost, "", http.StatusMethodNotAllowed, "GET only"},
		{"unknown format", kubehandler.DebugHandler(q), http.MethodGet, "?format=yaml", http.StatusBadRequest, "format must be"},
		{"nil loop", kubehandler.DebugHandler(nil), http.MethodGet, "", http.StatusInternalServerError, "not an EventLoop or WorkQueue"},
		{"other loop", kubehandler.DebugHandler(otherLoop{}), http.MethodGet, "?format=json", http.StatusInternalServerError, "not an EventLoop or WorkQueue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.handler.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), tt.method, "/debug/kubehandler"+tt.query, nil))
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.body) {
				t.Errorf("%s %s = %d:\n%s\nwant %d with %q", tt.method, tt.query, rec.Code, rec.Body, tt.status, tt.body)
			}
		})
	}
}
