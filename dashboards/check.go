package dashboards

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// scrapeLabels are the labels Prometheus itself adds to every series it
// scrapes; a query may match on them whatever the metric.
var scrapeLabels = []string{"job", "instance"}

// Check returns an error naming every query of a Grafana dashboard (see
// Queries) that selects a series families do not have, or matches on a label
// that series does not carry (besides job and instance, which Prometheus
// adds). families are what a prometheus.Gatherer returned after the library
// ran: a collector with no series yet is not gathered, so run the library
// until each metric the dashboard shows has one.
//
// planned names metrics the dashboard shows before the library reports
// them (the panel has no data until then): queries may select them, with
// any labels. Once one of them is gathered, Check fails and says to take it
// off the list, so the list names only what is still to come.
func Check(dashboardJSON []byte, families []*dto.MetricFamily, planned []string) error {
	queries, err := Queries(dashboardJSON)
	if err != nil {
		return err
	}
	if len(queries) == 0 {
		return errors.New("dashboards: the dashboard has no queries")
	}
	known := seriesLabels(families)
	var errs []error
	for _, name := range planned {
		if _, ok := known[name]; ok {
			errs = append(errs, fmt.Errorf("dashboards: %s is registered now: take it off the planned list", name))
		}
	}
	for _, q := range queries {
		sels, err := Selectors(q.Expr)
		if err != nil {
			errs = append(errs, fmt.Errorf("dashboards: %s: %w", q.Where, err))
			continue
		}
		if len(sels) == 0 {
			errs = append(errs, fmt.Errorf("dashboards: %s selects no metric: %s", q.Where, q.Expr))
		}
		for _, s := range sels {
			labels, ok := known[s.Metric]
			switch {
			case slices.Contains(planned, s.Metric):
			case !ok:
				errs = append(errs, fmt.Errorf("dashboards: %s selects %s, which the library does not register", q.Where, s.Metric))
			default:
				for _, l := range s.Labels {
					if !slices.Contains(labels, l) && !slices.Contains(scrapeLabels, l) {
						errs = append(errs, fmt.Errorf("dashboards: %s matches label %q of %s, which has only %s",
							q.Where, l, s.Metric, strings.Join(labels, ", ")))
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}

// seriesLabels returns the series names families expose, each with its label
// names: a histogram's name_bucket (with le), name_sum and name_count; a
// summary's name (with quantile), name_sum and name_count; other metrics'
// name.
func seriesLabels(families []*dto.MetricFamily) map[string][]string {
	out := make(map[string][]string)
	for _, mf := range families {
		var labels []string
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if !slices.Contains(labels, lp.GetName()) {
					labels = append(labels, lp.GetName())
				}
			}
		}
		slices.Sort(labels)
		name := mf.GetName()
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			out[name+"_bucket"] = append(slices.Clone(labels), "le")
			out[name+"_sum"] = labels
			out[name+"_count"] = labels
		case dto.MetricType_SUMMARY:
			out[name] = append(slices.Clone(labels), "quantile")
			out[name+"_sum"] = labels
			out[name+"_count"] = labels
		default:
			out[name] = labels
		}
	}
	return out
}
