package dashboards_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kubehandler/kubehandler/dashboards"
)

func TestSelectors(t *testing.T) {
	type sel = dashboards.Selector
	tests := []struct {
		name string
		expr string
		want []sel
	}{
		{"bare name", "workqueue_depth", []sel{{Metric: "workqueue_depth"}}},
		{"matchers", `workqueue_depth{name=~"$queue", job!="x"}`,
			[]sel{{Metric: "workqueue_depth", Labels: []string{"name", "job"}}}},
		{"space before the braces", `up {job="a"}`, []sel{{Metric: "up", Labels: []string{"job"}}}},
		{"aggregation with grouping first", `sum by (name, le) (rate(a_bucket{name="q"}[$__rate_interval]))`,
			[]sel{{Metric: "a_bucket", Labels: []string{"name"}}}},
		{"aggregation with grouping after", `sum(rate(a_total[5m])) without (instance)`, []sel{{Metric: "a_total"}}},
		{"quantile of a histogram", `histogram_quantile(0.99, sum by (le) (rate(h_bucket[1m])))`, []sel{{Metric: "h_bucket"}}},
		{"binary operators and vector matching", `a_sum / on (name) group_left (handler) b_count and bool c`,
			[]sel{{Metric: "a_sum"}, {Metric: "b_count"}, {Metric: "c"}}},
		{"offset, subquery and numbers", `max_over_time(a[1h:5m] offset 1d) > 1e-3 * 0x1f`, []sel{{Metric: "a"}}},
		{"strings are not names", `label_replace(a, "dst", "$1", "src", "(.*)")`, []sel{{Metric: "a"}}},
		{"grafana variables", `topk($k, a) > ${threshold:raw} or b[[interval]]`, []sel{{Metric: "a"}, {Metric: "b"}}},
		{"name matcher", `{__name__="a", job="j"}`, []sel{{Metric: "a", Labels: []string{"job"}}}},
		{"comment", "a # b{c=\"d\"}\n+ e", []sel{{Metric: "a"}, {Metric: "e"}}},
		{"escaped quote in a value", `a{x="say \"}\""}`, []sel{{Metric: "a", Labels: []string{"x"}}}},
		{"a metric called like an aggregation", `count + sum`, []sel{{Metric: "count"}, {Metric: "sum"}}},
		{"no selector", `vector(1) + 2`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dashboards.Selectors(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Selectors(%q) (-want +got):\n%s", tt.expr, diff)
			}
		})
	}
}

func TestSelectorsErrors(t *testing.T) {
	for _, expr := range []string{
		`{job="x"}`,         // no metric name
		`{__name__=~"a.*"}`, // not one name
		`a{job="x"`,         // unterminated {
		`a{job=x}`,          // unquoted value
		`a{job}`,            // no operator
		`a{="x"}`,           // no label name
		`rate(a[5m)`,        // unterminated [
		`a{job="x}`,         // unterminated string
		`sum by (name`,      // unterminated label list
	} {
		t.Run(expr, func(t *testing.T) {
			if got, err := dashboards.Selectors(expr); err == nil {
				t.Errorf("Selectors(%q) = %v, want an error", expr, got)
			}
		})
	}
}
