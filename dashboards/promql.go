package dashboards

import (
	"fmt"
	"strings"
)

// Selector is a vector selector of a PromQL expression: the series it
// names and the labels its matchers filter on.
type Selector struct {
	// Metric is the series name as written, e.g. "workqueue_depth" or
	// "kubehandler_handler_duration_seconds_bucket".
	Metric string
	// Labels are the label names of the selector's matchers, in order.
	Labels []string
}

// keywords are PromQL words that are not metric names where they stand
// alone: binary operators, modifiers and the special float values.
var keywords = map[string]bool{
	"and": true, "or": true, "unless": true, "atan2": true, "bool": true,
	"offset": true, "inf": true, "nan": true,
	"group_left": true, "group_right": true,
}

// aggregations are the aggregation operators, which may be followed by a
// grouping (sum by (name) (...)) rather than by their parenthesis.
var aggregations = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true,
	"stddev": true, "stdvar": true, "count": true, "count_values": true,
	"bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
}

// grouping are the words followed by a list of label names in parentheses.
var grouping = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true,
}

// Selectors returns the vector selectors of a PromQL expression, in order.
// It is a tokenizer, not a parser: an identifier is a metric name unless a
// parenthesis follows it (a function or aggregation), it is a keyword, or it
// stands in a label list (by, without, on, ignoring, group_left,
// group_right). Strings, durations and range or subquery brackets are
// skipped, and so are Grafana's variables ($var, ${var}, [[var]]). A
// selector without a metric name ({job="x"}) is named by its __name__
// equality matcher, or is an error: the dashboard could not be checked.
// Malformed matchers and unterminated strings or brackets are errors too.
func Selectors(expr string) ([]Selector, error) {
	l := lexer{s: expr}
	var out []Selector
	for {
		l.skipSpace()
		if l.done() {
			return out, nil
		}
		c := l.s[l.i]
		switch {
		case c == '#': // a comment, to the end of the line
			for !l.done() && l.s[l.i] != '\n' {
				l.i++
			}
		case c == '"' || c == '\'' || c == '`':
			if _, err := l.str(); err != nil {
				return nil, err
			}
		case c == '[':
			end := strings.IndexByte(l.s[l.i:], ']')
			if end < 0 {
				return nil, l.errorf("unterminated [")
			}
			l.i += end + 1
		case c == '$':
			l.variable()
		case c == '{':
			sel, err := l.matchers("")
			if err != nil {
				return nil, err
			}
			if sel.Metric == "" {
				return nil, l.errorf("a selector without a metric name")
			}
			out = append(out, sel)
		case isDigit(c) || c == '.' && l.i+1 < len(l.s) && isDigit(l.s[l.i+1]):
			l.number()
		case isIdentStart(c):
			word := l.ident()
			l.skipSpace()
			next := byte(0)
			if !l.done() {
				next = l.s[l.i]
			}
			switch {
			case grouping[strings.ToLower(word)] && next == '(':
				end := strings.IndexByte(l.s[l.i:], ')')
				if end < 0 {
					return nil, l.errorf("unterminated label list after %s", word)
				}
				l.i += end + 1
			case next == '(', keywords[strings.ToLower(word)],
				aggregations[strings.ToLower(word)] && l.groupingFollows():
				// a function, an aggregation, or a keyword
			case next == '{':
				sel, err := l.matchers(word)
				if err != nil {
					return nil, err
				}
				out = append(out, sel)
			default:
				out = append(out, Selector{Metric: word})
			}
		default: // operators, parentheses, commas
			l.i++
		}
	}
}

// lexer walks a PromQL expression.
type lexer struct {
	s string
	i int
}

func (l *lexer) done() bool { return l.i >= len(l.s) }

func (l *lexer) errorf(format string, args ...any) error {
	return fmt.Errorf("%s at offset %d of %q", fmt.Sprintf(format, args...), l.i, l.s)
}

func (l *lexer) skipSpace() {
	for !l.done() && strings.IndexByte(" \t\r\n", l.s[l.i]) >= 0 {
		l.i++
	}
}

// groupingFollows reports whether by or without comes next.
func (l *lexer) groupingFollows() bool {
	start := l.i
	word := strings.ToLower(l.ident())
	l.i = start
	return word == "by" || word == "without"
}

func (l *lexer) ident() string {
	start := l.i
	for !l.done() && (isIdentStart(l.s[l.i]) || isDigit(l.s[l.i])) {
		l.i++
	}
	return l.s[start:l.i]
}

// number skips a number or a duration: 0.99, 1e-3, 0x1f, 5m30s.
func (l *lexer) number() {
	for !l.done() {
		c := l.s[l.i]
		switch {
		case isDigit(c) || isIdentStart(c) || c == '.':
			l.i++
		case (c == '+' || c == '-') && (l.s[l.i-1] == 'e' || l.s[l.i-1] == 'E') && !strings.HasPrefix(strings.ToLower(l.s[:l.i]), "0x"):
			l.i++
		default:
			return
		}
	}
}

// variable skips a Grafana variable: $name or ${name...}.
func (l *lexer) variable() {
	l.i++ // $
	if !l.done() && l.s[l.i] == '{' {
		if end := strings.IndexByte(l.s[l.i:], '}'); end >= 0 {
			l.i += end + 1
			return
		}
	}
	l.ident()
}

// str reads a quoted string and returns its contents, escapes left as
// written.
func (l *lexer) str() (string, error) {
	quote := l.s[l.i]
	start := l.i
	l.i++
	for !l.done() {
		c := l.s[l.i]
		switch {
		case c == '\\' && quote != '`':
			l.i += 2
			continue
		case c == quote:
			l.i++
			return l.s[start+1 : l.i-1], nil
		}
		l.i++
	}
	l.i = start
	return "", l.errorf("unterminated string")
}

// matchers reads {label op "value", ...} into a selector of metric. An
// equality matcher on __name__ names the metric when metric is empty.
func (l *lexer) matchers(metric string) (Selector, error) {
	sel := Selector{Metric: metric}
	l.i++ // {
	for {
		l.skipSpace()
		if l.done() {
			return sel, l.errorf("unterminated {")
		}
		if l.s[l.i] == '}' {
			l.i++
			return sel, nil
		}
		if !isIdentStart(l.s[l.i]) {
			return sel, l.errorf("a label name expected")
		}
		label := l.ident()
		l.skipSpace()
		var op string
		for _, o := range []string{"=~", "!~", "!=", "="} {
			if strings.HasPrefix(l.s[l.i:], o) {
				op = o
				break
			}
		}
		if op == "" {
			return sel, l.errorf("a matcher operator expected after %s", label)
		}
		l.i += len(op)
		l.skipSpace()
		if l.done() || strings.IndexByte("\"'`", l.s[l.i]) < 0 {
			return sel, l.errorf("a quoted value expected after %s%s", label, op)
		}
		value, err := l.str()
		if err != nil {
			return sel, err
		}
		if label == "__name__" {
			if op == "=" && sel.Metric == "" {
				sel.Metric = value
			}
		} else {
			sel.Labels = append(sel.Labels, label)
		}
		l.skipSpace()
		if !l.done() && l.s[l.i] == ',' {
			l.i++
		}
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isIdentStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == ':'
}

// grafanaQueryExpr returns the PromQL of a template variable's query:
// label_values(selector, label) gives selector, query_result(expr) gives
// expr. label_values(label) and metrics(regex) name no selector (ok is
// false); anything else is taken as PromQL.
func grafanaQueryExpr(q string) (expr string, ok bool) {
	q = strings.TrimSpace(q)
	inner, isLabelValues := call(q, "label_values")
	if isLabelValues {
		comma := lastTopLevelComma(inner)
		if comma < 0 {
			return "", false
		}
		return strings.TrimSpace(inner[:comma]), true
	}
	if inner, ok := call(q, "query_result"); ok {
		return inner, true
	}
	if _, ok := call(q, "metrics"); ok {
		return "", false
	}
	return q, q != ""
}

// call returns the arguments of q when q is a call of fn.
func call(q, fn string) (string, bool) {
	if !strings.HasPrefix(q, fn) || !strings.HasSuffix(q, ")") {
		return "", false
	}
	rest := strings.TrimSpace(q[len(fn):])
	if !strings.HasPrefix(rest, "(") {
		return "", false
	}
	return rest[1 : len(rest)-1], true
}

// lastTopLevelComma returns the index of the last comma of s outside
// brackets and strings, or -1.
func lastTopLevelComma(s string) int {
	depth, last := 0, -1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '(', '{', '[':
			depth++
		case ')', '}', ']':
			depth--
		case '"', '\'', '`':
			for i++; i < len(s) && s[i] != c; i++ {
				if s[i] == '\\' && c != '`' {
					i++
				}
			}
		case ',':
			if depth == 0 {
				last = i
			}
		}
	}
	return last
}
