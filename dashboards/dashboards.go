// Package dashboards checks the Grafana dashboards of this folder against
// the metrics the library registers, so that a dashboard cannot drift from
// the code: a query that names a metric, or filters on a label, that
// kubehandler does not report is an error (see Check).
//
// The dashboards themselves are the JSON files next to this file (see
// README.md); this package reads them, it does not embed them.
//
// Choices made here:
//   - Queries are checked by a small PromQL tokenizer (Selectors), not a full
//     parser: it finds the vector selectors of an expression, which is what
//     drift breaks, and accepts Grafana's variables ($var, ${var}) where
//     PromQL has a string or a duration.
//   - A histogram is selected through its series (name_bucket, name_sum,
//     name_count); a query of the bare name of a classic histogram has no
//     data and is an error.
//   - The labels Prometheus adds when it scrapes a target (job, instance)
//     may be matched on every metric.
package dashboards

import (
	"encoding/json"
	"fmt"
)

// Query is one PromQL expression of a dashboard.
type Query struct {
	// Where names the panel and target, or the template variable, the
	// expression comes from, for error messages.
	Where string
	// Expr is the expression as written, Grafana variables included.
	Expr string
}

// dashboard is the part of Grafana's dashboard model that holds queries.
type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int    `json:"id"`
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // the panels of a collapsed row
}

type variable struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Query is a string in older dashboards, an object with a query field
	// in newer ones.
	Query json.RawMessage `json:"query"`
}

// Queries returns the PromQL expressions of a Grafana dashboard (its JSON
// model): every target of every panel, rows' collapsed panels included, and
// the query of every template variable of type query. A variable's
// label_values(selector, label) gives its selector; label_values(label)
// selects nothing and is left out. A target with an empty expression is an
// error: it is either a mistake or a query this package cannot read.
func Queries(dashboardJSON []byte) ([]Query, error) {
	var d dashboard
	if err := json.Unmarshal(dashboardJSON, &d); err != nil {
		return nil, fmt.Errorf("dashboards: not a dashboard: %w", err)
	}
	var out []Query
	var walk func([]panel) error
	walk = func(panels []panel) error {
		for _, p := range panels {
			for _, t := range p.Targets {
				where := fmt.Sprintf("panel %d %q, target %s", p.ID, p.Title, t.RefID)
				if t.Expr == "" {
					return fmt.Errorf("dashboards: %s has no expr", where)
				}
				out = append(out, Query{Where: where, Expr: t.Expr})
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue // datasource, custom, interval...: no PromQL
		}
		where := fmt.Sprintf("variable %q", v.Name)
		q, err := variableQuery(v.Query)
		if err != nil {
			return nil, fmt.Errorf("dashboards: %s: %w", where, err)
		}
		if expr, ok := grafanaQueryExpr(q); ok {
			out = append(out, Query{Where: where, Expr: expr})
		}
	}
	return out, nil
}

// variableQuery returns the query text of a template variable.
func variableQuery(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", fmt.Errorf("query is neither a string nor an object with a query: %w", err)
	}
	return obj.Query, nil
}
