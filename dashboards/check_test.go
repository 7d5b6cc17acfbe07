package dashboards_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kubehandler/kubehandler/dashboards"
)

// smallFamilies gathers a gauge g and a histogram h, each labelled by name,
// and a gauge unlabelled with no labels.
func smallFamilies(t *testing.T) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "g", Help: "g"}, []string{"name"})
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "h", Help: "h"}, []string{"name"})
	u := prometheus.NewGauge(prometheus.GaugeOpts{Name: "unlabelled", Help: "u"})
	reg.MustRegister(g, h, u)
	g.WithLabelValues("q").Set(1)
	h.WithLabelValues("q").Observe(1)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// fragment returns a dashboard with one panel per expression and the
// template variable queries given.
func fragment(t *testing.T, exprs []string, variables ...any) []byte {
	t.Helper()
	type target struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	}
	var panels []any
	for i, e := range exprs {
		panels = append(panels, map[string]any{"id": i + 1, "title": "p", "targets": []target{{"A", e}}})
	}
	var list []any
	for _, v := range variables {
		list = append(list, map[string]any{"name": "v", "type": "query", "query": v})
	}
	// A datasource variable's query is a plugin type, not PromQL.
	list = append(list, map[string]any{"name": "ds", "type": "datasource", "query": "prometheus"})
	b, err := json.Marshal(map[string]any{
		"panels":     []any{map[string]any{"type": "row", "id": 100, "panels": panels}},
		"templating": map[string]any{"list": list},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheck(t *testing.T) {
	families := smallFamilies(t)
	tests := []struct {
		name      string
		exprs     []string
		variables []any
		planned   []string
		wantErr   []string // substrings of the error; none: no error
	}{
		{name: "registered series", exprs: []string{
			`sum by (name) (g{name=~"$queue", job="j", instance="i"})`,
			`histogram_quantile(0.9, sum by (le) (rate(h_bucket{name="q", le!=""}[5m])))`,
			`rate(h_sum[5m]) / rate(h_count[5m])`, `unlabelled`,
		}, variables: []any{"label_values(g, name)", map[string]any{"query": `label_values(h_count{name="q"}, name)`}, "label_values(name)"}},
		{name: "bogus metric", exprs: []string{`g`, `rate(bogus_total{name="q"}[5m])`},
			wantErr: []string{"bogus_total", "does not register"}},
		{name: "bogus metric in a variable", exprs: []string{`g`}, variables: []any{map[string]any{"query": `label_values(bogus{name="q"}, name)`}},
			wantErr: []string{`variable "v" selects bogus`}},
		{name: "bogus label", exprs: []string{`g{handler="x"}`}, wantErr: []string{`label "handler" of g`}},
		{name: "le only on buckets", exprs: []string{`h_count{le="1"}`}, wantErr: []string{`label "le" of h_count`}},
		{name: "bare histogram name", exprs: []string{`rate(h[5m])`}, wantErr: []string{"selects h,"}},
		{name: "planned metric", exprs: []string{`g`, `sum(slots{any="label"})`}, planned: []string{"slots"}},
		{name: "planned metric registered now", exprs: []string{`g`}, planned: []string{"g"},
			wantErr: []string{"g is registered now"}},
		{name: "no selector", exprs: []string{`vector(1)`}, wantErr: []string{"selects no metric"}},
		{name: "unparsable", exprs: []string{`g{name=}`}, wantErr: []string{"quoted value"}},
		{name: "empty target", exprs: []string{``}, wantErr: []string{"has no expr"}},
		{name: "no queries", wantErr: []string{"no queries"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := dashboards.Check(fragment(t, tt.exprs, tt.variables...), families, tt.planned)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check = nil, want an error with %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Check = %v, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestCheckNotADashboard(t *testing.T) {
	if err := dashboards.Check([]byte("[1]"), smallFamilies(t), nil); err == nil {
		t.Error("Check of a JSON list = nil, want an error")
	}
}
