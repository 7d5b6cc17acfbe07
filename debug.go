package kubehandler

import (
	"cmp"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// DefaultDebugMaxKeys is how many keys DebugHandler lists per section of a
// handler unless DebugMaxKeys says otherwise.
const DefaultDebugMaxKeys = 50

// DebugOption configures DebugHandler.
type DebugOption func(*debugOptions)

type debugOptions struct {
	maxKeys int
}

// DebugMaxKeys sets how many keys DebugHandler lists at most in each section
// of a handler (calls in flight, keys in backoff); the report says how many
// it left out. n < 1 means DefaultDebugMaxKeys.
func DebugMaxKeys(n int) DebugOption {
	return func(o *debugOptions) {
		if n >= 1 {
			o.maxKeys = n
		}
	}
}

// DebugHandler returns an http.Handler that shows what loop is doing now,
// for operators asking why an object is not handled. Mount it next to
// /metrics (say at /debug/kubehandler); nothing is served unless you do. Per
// handler, it shows the keys waiting to be dispatched and how many of them
// are ready for a worker, the calls in flight (key, event type, running
// time; longest running first), the keys in backoff after a failure (retry
// count, last error, when the next attempt is due; most retries first) and
// the key that has waited longest for a worker. A GET with ?format=json
// returns a DebugReport, the format for tools; any other GET a small HTML
// page (no scripts, no external assets). Other methods get 405.
//
// It shows keys (namespace and name) and error texts, never objects. Error
// texts are what the handlers returned, cut to 1 KiB: whatever a handler
// puts in an error (a response body, a secret's name, a value from the
// object) is shown to whoever can reach the endpoint. Serve it only where
// the metrics are served, or on a port that is not exposed.
//
// It costs nothing while nobody asks. A request walks the loop's keys under
// the loop's lock, which holds up the loop's events and workers for a few
// milliseconds per hundred thousand keys (BenchmarkDebugReport). What it
// shows of failures is recorded on the failure path only, and the event type
// of each call in the worker's slot, which is written anyway. From the moment DebugHandler
// is called, the loop records when keys are queued and calls start, as it
// does with WithMetrics (a clock reading per event and per call; nothing
// more with metrics), so that it can show for how long; calls that started
// before have no running time.
//
// loop must be an EventLoop or WorkQueue made by this package; for any other
// Loop the handler answers 500.
func DebugHandler(loop Loop, opts ...DebugOption) http.Handler {
	o := debugOptions{maxKeys: DefaultDebugMaxKeys}
	for _, opt := range opts {
		opt(&o)
	}
	q := queueOf(loop)
	if q != nil {
		q.mu.Lock()
		q.debugged = true
		if q.active != nil {
			q.active.ready.recordTimesLocked()
		}
		q.mu.Unlock()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "kubehandler: the debug endpoint serves GET only", http.StatusMethodNotAllowed)
			return
		}
		format := req.URL.Query().Get("format")
		if format != "" && format != "json" && format != "html" {
			http.Error(w, `kubehandler: format must be "json" or "html"`, http.StatusBadRequest)
			return
		}
		if q == nil {
			http.Error(w, errNotALoop.Error(), http.StatusInternalServerError)
			return
		}
		report := q.debugReport(o.maxKeys)
		if format == "json" {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(report)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// The page has one inline style sheet and nothing else to load.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		_ = debugPage.Execute(w, report)
	})
}

// DebugReport is what DebugHandler serves with ?format=json: a snapshot of
// one loop. It is the documented format for tools: fields may be added,
// none will be renamed, removed or change meaning. Times are RFC 3339, by
// the loop's clock (WithClock); durations are seconds.
type DebugReport struct {
	// Queue is the loop's name.
	Queue string `json:"queue"`
	// Time is when the snapshot was taken.
	Time time.Time `json:"time"`
	// State is where the loop stands: "stopped" (no Run), "syncing" (Run
	// waits for the caches), "standby" (leader election, not leading),
	// "dispatching" (workers run) or "stopping" (Run is returning).
	State string `json:"state"`
	// Workers is the threadiness of the Run; 0 when stopped.
	Workers int `json:"workers"`
	// Depth is the number of keys waiting to be dispatched, all handlers
	// together: WorkQueue.Length.
	Depth int `json:"depth"`
	// MaxKeys is the most keys listed per section of a handler.
	MaxKeys int `json:"maxKeys"`
	// Handlers are the loop's handlers, by name: those registered, and
	// any other kind with keys in the queue.
	Handlers []DebugHandlerState `json:"handlers"`
	// Ring is this replica's part in its ring (WithSharding), while a Run
	// dispatches in one; absent otherwise.
	Ring *DebugRing `json:"ring,omitempty"`
}

// DebugRing is a replica's view of its ring (WithSharding), as its last
// Step left it. Slot sets are written as ranges: "0-3,7", "none".
type DebugRing struct {
	// Namespace and Name are the ring's; Identity is this replica's.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Identity  string `json:"identity"`
	// Slots is the ring's slot count.
	Slots int `json:"slots"`
	// Held are the slots this replica may dispatch now; Target those the
	// last Step computed as its share.
	Held   string `json:"held"`
	Target string `json:"target"`
	// Draining are the slots being handed over: closed for new calls,
	// released once their calls in flight (InFlight) have returned.
	Draining []DebugDrainingSlot `json:"draining"`
	// Members are the live members the last Step read, sorted.
	Members []string `json:"members"`
	// MembershipDeadline is when this replica's membership term, and with
	// it the term of every slot it holds, ends unless renewed first;
	// absent while it has no membership.
	MembershipDeadline time.Time `json:"membershipDeadline,omitzero"`
	// Ready is the replica's readiness: it holds its share.
	Ready bool `json:"ready"`
	// LastStepError is the error of the last Step, "" if it succeeded.
	LastStepError string `json:"lastStepError"`
}

// DebugDrainingSlot is a slot being handed over.
type DebugDrainingSlot struct {
	Slot     int `json:"slot"`
	InFlight int `json:"inFlight"`
}

// DebugHandlerState is one handler's part of a DebugReport.
type DebugHandlerState struct {
	// Name is the handler's name, the Kind of its keys.
	Name string `json:"name"`
	// Depth is the number of its keys waiting to be dispatched: ready for
	// a worker, in backoff, or waiting for a RequeueAfter.
	Depth int `json:"depth"`
	// Ready is the number of its keys queued for the next free worker.
	Ready int `json:"ready"`
	// (When the entry queue gets lanes, DESIGN promise 9, the depth of
	// each lane is to be reported here.)

	// InFlight are its calls running now, longest running first, at most
	// MaxKeys; InFlightOmitted counts those left out.
	InFlight        []DebugCall `json:"inFlight"`
	InFlightOmitted int         `json:"inFlightOmitted"`
	// Backoff are its keys whose last call failed, waiting for their
	// retry: most retries first, then soonest due; at most MaxKeys.
	// BackoffOmitted counts those left out.
	Backoff        []DebugBackoff `json:"backoff"`
	BackoffOmitted int            `json:"backoffOmitted"`
	// OldestWaiting is the key ready for a worker that was queued the
	// longest ago; null when none is ready.
	OldestWaiting *DebugWaiting `json:"oldestWaiting"`
}

// DebugCall is a handler call in flight.
type DebugCall struct {
	// Namespace (empty for a cluster-scoped object) and Name are the key's.
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Event is the event type: "add", "update" or "delete".
	Event string `json:"event"`
	// Retries is the call's Event.Retries: 0 for a first attempt.
	Retries int `json:"retries"`
	// Started is when the call started; absent when it started before
	// DebugHandler was called, and then RunningSeconds is 0.
	Started        time.Time `json:"started,omitzero"`
	RunningSeconds float64   `json:"runningSeconds"`
}

// DebugBackoff is a key waiting for a retry after a failed call.
type DebugBackoff struct {
	// Namespace (empty for a cluster-scoped object) and Name are the key's.
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Event is the type of the event that failed and will be retried.
	Event string `json:"event"`
	// Retries is how many times in a row the key failed: the retry's
	// Event.Retries.
	Retries int `json:"retries"`
	// LastError is the text of the last call's error, cut to 1 KiB (the
	// cut ends in "…"). It is whatever the handler returned: see
	// DebugHandler.
	LastError string `json:"lastError"`
	// NextAttempt is when the rate limiter lets the retry be queued;
	// DueInSeconds is how long until then, negative once it is past (the
	// key is then ready, waiting for a worker).
	NextAttempt  time.Time `json:"nextAttempt"`
	DueInSeconds float64   `json:"dueInSeconds"`
}

// DebugWaiting is a key queued for a worker.
type DebugWaiting struct {
	// Namespace (empty for a cluster-scoped object) and Name are the key's.
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Since is when the key was queued; absent when that was before
	// DebugHandler was called, and then WaitingSeconds is 0.
	Since          time.Time `json:"since,omitzero"`
	WaitingSeconds float64   `json:"waitingSeconds"`
}

// phaseNames are DebugReport.State's values for a Run's phases.
var phaseNames = [...]string{
	phaseSyncing:     "syncing",
	phaseStandby:     "standby",
	phaseDispatching: "dispatching",
	phaseEnded:       "stopping",
}

// debugFailure is a key in backoff, as found under the lock: failures are
// never changed once recorded, so it is read after.
type debugFailure struct {
	key Key
	f   *failure
}

// debugReport takes a snapshot of q. Under q's lock it only counts and
// copies; sorting, cutting and formatting happen after.
func (q *workQueue) debugReport(maxKeys int) DebugReport {
	rep := DebugReport{Queue: q.name, State: "stopped", MaxKeys: maxKeys}
	kinds := make(map[string]*DebugHandlerState)
	kindOf := func(name string) *DebugHandlerState {
		k := kinds[name]
		if k == nil {
			k = &DebugHandlerState{Name: name, InFlight: []DebugCall{}, Backoff: []DebugBackoff{}}
			kinds[name] = k
		}
		return k
	}
	for name := range *q.kinds.Load() {
		kindOf(name)
	}
	var failures []debugFailure
	oldest := make(map[string]time.Time) // queued time of each kind's OldestWaiting

	q.mu.Lock()
	now := q.opts.clock.Now()
	rep.Time, rep.Depth = now, q.waiting
	if r := q.active; r != nil {
		rep.State, rep.Workers = phaseNames[r.phase], r.threadiness
		for _, s := range r.ready.slots {
			if s.entry == nil {
				continue
			}
			c := DebugCall{Namespace: s.entry.key().Namespace, Name: s.entry.key().Name, Event: s.typ.String(), Started: s.started}
			if f := q.failures[s.entry]; f != nil {
				c.Retries = int(f.retries)
			}
			if !s.started.IsZero() {
				c.RunningSeconds = now.Sub(s.started).Seconds()
			}
			k := kindOf(s.entry.kind.String())
			k.InFlight = append(k.InFlight, c)
		}
		for _, e := range r.ready.queuedEntries() {
			k := kindOf(e.kind.String())
			k.Ready++
			added, known := r.ready.addedAt[e]
			if k.OldestWaiting == nil || known && (oldest[k.Name].IsZero() || added.Before(oldest[k.Name])) {
				k.OldestWaiting = &DebugWaiting{Namespace: e.key().Namespace, Name: e.key().Name}
				if known {
					oldest[k.Name] = added
				}
			}
		}
	}
	var k *DebugHandlerState // the last entry's: keys of one kind share its name
	for e := range q.entries.all() {
		pending, f := !e.idle(), q.failures[e]
		if !pending && f == nil {
			continue
		}
		if k == nil || k.Name != e.kind.String() {
			k = kindOf(e.kind.String())
		}
		if pending {
			k.Depth++
		}
		if f != nil && !e.has(flagProcessing) {
			failures = append(failures, debugFailure{e.key(), f})
		}
	}
	q.mu.Unlock()
	if sh := q.sharder.Load(); sh != nil {
		rep.Ring = sh.debugRing()
	}

	for _, f := range failures {
		k := kindOf(f.key.Kind)
		k.Backoff = append(k.Backoff, DebugBackoff{
			Namespace: f.key.Namespace, Name: f.key.Name, Event: f.f.typ.String(), Retries: int(f.f.retries),
			LastError: f.f.err, NextAttempt: f.f.due, DueInSeconds: f.f.due.Sub(now).Seconds(),
		})
	}
	for _, k := range kinds {
		if w := k.OldestWaiting; w != nil {
			if since := oldest[k.Name]; !since.IsZero() {
				w.Since, w.WaitingSeconds = since, now.Sub(since).Seconds()
			}
		}
		slices.SortFunc(k.InFlight, func(a, b DebugCall) int {
			return cmp.Or(compareStarts(a.Started, b.Started), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
		})
		k.InFlight, k.InFlightOmitted = cut(k.InFlight, maxKeys)
		slices.SortFunc(k.Backoff, func(a, b DebugBackoff) int {
			return cmp.Or(cmp.Compare(b.Retries, a.Retries), a.NextAttempt.Compare(b.NextAttempt),
				cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
		})
		k.Backoff, k.BackoffOmitted = cut(k.Backoff, maxKeys)
		rep.Handlers = append(rep.Handlers, *k)
	}
	slices.SortFunc(rep.Handlers, func(a, b DebugHandlerState) int { return cmp.Compare(a.Name, b.Name) })
	if rep.Handlers == nil {
		rep.Handlers = []DebugHandlerState{}
	}
	return rep
}

// compareStarts orders start times earliest (longest running) first, and
// unknown ones last.
func compareStarts(a, b time.Time) int {
	switch {
	case a.IsZero() || b.IsZero():
		return cmp.Compare(boolInt(a.IsZero()), boolInt(b.IsZero()))
	}
	return a.Compare(b)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// cut returns the first n of s and how many it left out.
func cut[T any](s []T, n int) ([]T, int) {
	if len(s) <= n {
		return s, 0
	}
	return s[:n], len(s) - n
}

// debugPage is DebugHandler's HTML: html/template escapes every key and
// error text.
var debugPage = template.Must(template.New("debug").Funcs(template.FuncMap{
	"key": func(namespace, name string) string {
		if namespace == "" {
			return name
		}
		return namespace + "/" + name
	},
	"seconds": func(s float64) string {
		return (time.Duration(s * float64(time.Second))).Round(time.Millisecond).String()
	},
	"when": func(t time.Time) string { return t.Format(time.RFC3339) },
	"count": func(n int, noun string) string {
		if n == 1 {
			return "1 " + noun
		}
		return strconv.Itoa(n) + " " + noun + "s"
	},
	"due": func(s float64) string {
		d := (time.Duration(s * float64(time.Second))).Round(time.Millisecond)
		if d < 0 {
			return "due " + (-d).String() + " ago"
		}
		return "in " + d.String()
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>kubehandler: {{.Queue}}</title>
<style>
body { font-family: sans-serif; margin: 1em 2em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
td.key { white-space: nowrap; }
td.error { font-family: monospace; white-space: pre-wrap; max-width: 60em; }
.omitted { color: #555; }
</style>
</head>
<body>
<h1>kubehandler queue {{.Queue}}</h1>
<p>State: <strong>{{.State}}</strong>; {{count .Workers "worker"}}; {{count .Depth "key"}} waiting.
Taken at {{when .Time}}. <a href="?format=json">JSON</a></p>
{{range .Handlers}}
<section>
<h2>Handler {{.Name}}</h2>
<p>{{count .Depth "key"}} waiting, {{.Ready}} of them ready for a worker.
{{- with .OldestWaiting}} Waiting longest: <strong class="key">{{key .Namespace .Name}}</strong>
{{- if not .Since.IsZero}}, for {{seconds .WaitingSeconds}}{{end}}.{{end}}</p>
<h3>Calls in flight</h3>
{{- if .InFlight}}
<table>
<tr><th>Key</th><th>Event</th><th>Retries</th><th>Running for</th></tr>
{{- range .InFlight}}
<tr><td class="key">{{key .Namespace .Name}}</td><td>{{.Event}}</td><td>{{.Retries}}</td><td>{{if .Started.IsZero}}unknown{{else}}{{seconds .RunningSeconds}}{{end}}</td></tr>
{{- end}}
</table>
{{- else}}
<p>None.</p>
{{- end}}
{{- if .InFlightOmitted}}
<p class="omitted">{{.InFlightOmitted}} more not shown.</p>
{{- end}}
<h3>Keys in backoff</h3>
{{- if .Backoff}}
<table>
<tr><th>Key</th><th>Event</th><th>Retries</th><th>Next attempt</th><th>Last error</th></tr>
{{- range .Backoff}}
<tr><td class="key">{{key .Namespace .Name}}</td><td>{{.Event}}</td><td>{{.Retries}}</td><td>{{when .NextAttempt}} ({{due .DueInSeconds}})</td><td class="error">{{.LastError}}</td></tr>
{{- end}}
</table>
{{- else}}
<p>None.</p>
{{- end}}
{{- if .BackoffOmitted}}
<p class="omitted">{{.BackoffOmitted}} more not shown.</p>
{{- end}}
</section>
{{- else}}
<p>No handlers.</p>
{{- end}}
{{- with .Ring}}
<section>
<h2>Ring {{.Namespace}}/{{.Name}}</h2>
<p>Replica <strong>{{.Identity}}</strong>, {{if .Ready}}ready{{else}}not ready{{end}}: holds slots {{.Held}} of {{.Slots}}, its share {{.Target}}.
{{- if not .MembershipDeadline.IsZero}} Its membership, and every slot it holds, ends at {{when .MembershipDeadline}} unless renewed.{{else}} No membership.{{end}}</p>
<p>Members: {{range $i, $m := .Members}}{{if $i}}, {{end}}{{$m}}{{else}}none{{end}}.</p>
<h3>Slots being handed over</h3>
{{- if .Draining}}
<table>
<tr><th>Slot</th><th>Calls in flight</th></tr>
{{- range .Draining}}
<tr><td>{{.Slot}}</td><td>{{.InFlight}}</td></tr>
{{- end}}
</table>
{{- else}}
<p>None.</p>
{{- end}}
<p>Last step: {{if .LastStepError}}<span class="error">{{.LastStepError}}</span>{{else}}succeeded{{end}}.</p>
</section>
{{- end}}
</body>
</html>
`))
