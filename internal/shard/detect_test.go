package shard

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// server is a stand-in list endpoint over objects: it filters by shard
// selector or not, and echoes it or not.
type server struct {
	uids    []types.UID
	filters bool
	echoes  bool
	lied    bool // echoes without filtering
	err     error
	calls   int
}

func (s *server) list(_ context.Context, opts metav1.ListOptions) (*corev1.ConfigMapList, error) {
	s.calls++
	if s.err != nil {
		return nil, s.err
	}
	out := &corev1.ConfigMapList{}
	half, _ := NewRing(2)
	for i, uid := range s.uids {
		if s.filters && opts.ShardSelector != "" && !half.Contains(NewSet(0), uid) {
			continue
		}
		out.Items = append(out.Items, corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprint(i), UID: uid}})
	}
	if (s.echoes || s.lied) && opts.ShardSelector != "" {
		out.ShardInfo = &metav1.ShardInfo{Selector: opts.ShardSelector}
	}
	return out, nil
}

// uids returns n random UIDs, all in the lower half of the hash space if
// lowerOnly.
func uids(n int, lowerOnly bool) []types.UID {
	rng := rand.New(rand.NewPCG(9, 10))
	half, _ := NewRing(2)
	var out []types.UID
	for len(out) < n {
		uid := randomUID(rng)
		if !lowerOnly || half.SlotOf(uid) == 0 {
			out = append(out, uid)
		}
	}
	return out
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name      string
		server    server
		honoured  bool
		calls     int
		reasonHas string
	}{
		{"filters and echoes", server{uids: uids(50, false), filters: true, echoes: true}, true, 1, "echoed"},
		{"filters and echoes, no objects", server{filters: true, echoes: true}, true, 1, "echoed"},
		{"ignores the selector", server{uids: uids(50, false)}, false, 1, "feature gate"},
		{"filters without echoing", server{uids: uids(50, false), filters: true}, true, 2, "left out"},
		{"echoes but does not filter", server{uids: uids(50, false), lied: true}, false, 1, "ignores"},
		{"ignores, no objects: cannot tell", server{}, false, 2, "cannot tell"},
		{"ignores, objects in the lower half only: cannot tell", server{uids: uids(20, true)}, false, 2, "cannot tell"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Detect(t.Context(), tt.server.list)
			if err != nil {
				t.Fatal(err)
			}
			if got.Honoured != tt.honoured || !strings.Contains(got.Reason, tt.reasonHas) {
				t.Errorf("Detect = %+v, want honoured %t and a reason with %q", got, tt.honoured, tt.reasonHas)
			}
			if tt.server.calls != tt.calls {
				t.Errorf("%d list calls, want %d", tt.server.calls, tt.calls)
			}
		})
	}
}

func TestDetectReturnsListErrors(t *testing.T) {
	boom := errors.New("boom")
	s := server{err: boom}
	if _, err := Detect(t.Context(), s.list); !errors.Is(err, boom) {
		t.Errorf("Detect error = %v, want one wrapping %v", err, boom)
	}
}

// TestDetectUnstructuredEcho: a dynamic client's list carries the echo in
// its metadata map.
func TestDetectUnstructuredEcho(t *testing.T) {
	list := func(_ context.Context, opts metav1.ListOptions) (*unstructured.UnstructuredList, error) {
		l := &unstructured.UnstructuredList{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMapList",
			"metadata": map[string]any{"shardInfo": map[string]any{"selector": opts.ShardSelector}},
		}}
		return l, nil
	}
	got, err := Detect(t.Context(), list)
	if err != nil || !got.Honoured {
		t.Errorf("Detect = %+v, %v; want honoured", got, err)
	}
}

// TestDetectOnAFakeClientset: client-go's fake ignores shard selectors, as
// a server without the feature gate does; a typed List is passed as is.
func TestDetectOnAFakeClientset(t *testing.T) {
	var objs []corev1.ConfigMap
	for i, uid := range uids(10, false) {
		objs = append(objs, corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprint(i), UID: uid}})
	}
	cs := fake.NewClientset(&corev1.ConfigMapList{Items: objs})
	got, err := Detect(t.Context(), cs.CoreV1().ConfigMaps("ns").List)
	if err != nil || got.Honoured {
		t.Errorf("Detect = %+v, %v; want not honoured", got, err)
	}
}
