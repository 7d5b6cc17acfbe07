package pause_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehandler/kubehandler/handlers/pause"
)

func TestIsPaused(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		want   bool
	}{
		{"no labels", nil, false},
		{"other labels", map[string]string{"example.com/pause": "x", "paused": "true"}, false},
		{"label with a value", map[string]string{label: "true"}, true},
		{"label with an empty value", map[string]string{label: ""}, true},
		{"label with value false: the value is ignored", map[string]string{label: "false"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := &metav1.ObjectMeta{Labels: tt.labels}
			if got := pause.IsPaused(obj, label); got != tt.want {
				t.Errorf("IsPaused = %v, want %v", got, tt.want)
			}
		})
	}
	if pause.IsPaused(nil, label) {
		t.Error("IsPaused(nil) = true")
	}
}

func TestConditionConstructors(t *testing.T) {
	tests := []struct {
		name       string
		cond       metav1.Condition
		wantReason string
		wantInMsg  []string
	}{
		{"by label", pause.NewPausedCondition(label), pause.ReasonPausedByLabel, []string{label}},
		{"by controller", pause.NewSelfPausedCondition(label), pause.ReasonPausedByController, []string{"remove the label " + label, "to resume"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cond
			if c.Type != "Paused" || c.Status != metav1.ConditionTrue || c.Reason != tt.wantReason {
				t.Errorf("got %s=%s (%s), want Paused=True (%s)", c.Type, c.Status, c.Reason, tt.wantReason)
			}
			for _, s := range tt.wantInMsg {
				if !strings.Contains(c.Message, s) {
					t.Errorf("message %q does not contain %q", c.Message, s)
				}
			}
		})
	}
}
