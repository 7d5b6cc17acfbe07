package shard

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// detectLimit bounds each list Detect makes: a page is enough to tell.
const detectLimit = 500

// A Detection is what Detect found out about a server.
type Detection struct {
	// Honoured is true when the server filters lists by shard selector.
	Honoured bool
	// Reason says how Detect knows, for a log line.
	Reason string
}

// Detect finds out whether the server honours shard selectors
// (metav1.ListOptions.ShardSelector, the ShardedListAndWatch feature gate)
// for the resource that list lists: pass a typed client's List
// (clientset.CoreV1().ConfigMaps(ns).List) or a dynamic one's
// (dyn.Resource(gvr).Namespace(ns).List). A server without the gate
// ignores the field and returns everything, so Detect does not trust it:
// it lists one page with a selector of the lower half of the hash space
// and
//   - a response that returns an object outside that half means the
//     selector was ignored: not honoured;
//   - a response that echoes the selector (ListMeta.ShardInfo, which a
//     server that filtered sets) and holds only objects inside: honoured;
//   - otherwise it lists a page without the selector: if that one holds an
//     object outside the half, the first was filtered: honoured; if not
//     (no object of the resource in the upper half, so no way to tell),
//     not honoured, which is the safe answer (filtering on the client side
//     is always correct).
//
// It makes one or two list calls of at most 500 objects and returns their
// error, if any.
func Detect[L runtime.Object](ctx context.Context, list func(context.Context, metav1.ListOptions) (L, error)) (Detection, error) {
	half, _ := NewRing(2) // valid
	lower := NewSet(0)
	sel, err := half.Selector(lower)
	if err != nil {
		return Detection{}, err
	}

	sharded, err := list(ctx, metav1.ListOptions{ShardSelector: sel.String(), Limit: detectLimit})
	if err != nil {
		return Detection{}, fmt.Errorf("shard: listing with a shard selector: %w", err)
	}
	outside, inside, err := countHalves(half, lower, sharded)
	if err != nil {
		return Detection{}, err
	}
	echo := shardInfoSelector(sharded)
	switch {
	case outside > 0:
		return Detection{Reason: fmt.Sprintf("a list with a shard selector returned %d of %d objects outside it: the server ignores shard selectors (is the ShardedListAndWatch feature gate off?)", outside, outside+inside)}, nil
	case echo != "":
		return Detection{Honoured: true, Reason: fmt.Sprintf("the server filtered a list by shard selector (%d objects) and echoed it", inside)}, nil
	}

	full, err := list(ctx, metav1.ListOptions{Limit: detectLimit})
	if err != nil {
		return Detection{}, fmt.Errorf("shard: listing without a shard selector: %w", err)
	}
	fullOutside, fullInside, err := countHalves(half, lower, full)
	if err != nil {
		return Detection{}, err
	}
	if fullOutside > 0 {
		return Detection{Honoured: true, Reason: fmt.Sprintf("a list with a shard selector left out the %d objects outside it that a full list returned", fullOutside)}, nil
	}
	return Detection{Reason: fmt.Sprintf("cannot tell: none of the %d objects listed lies outside the shard selector, and the server did not echo it; assuming shard selectors are ignored", fullInside)}, nil
}

// countHalves counts the objects of list outside and inside the slots s
// of r.
func countHalves(r Ring, s Set, list runtime.Object) (outside, inside int, err error) {
	err = meta.EachListItem(list, func(obj runtime.Object) error {
		m, err := meta.Accessor(obj)
		if err != nil {
			return err
		}
		if r.Contains(s, m.GetUID()) {
			inside++
		} else {
			outside++
		}
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("shard: reading a list: %w", err)
	}
	return outside, inside, nil
}

// shardInfoSelector returns the shard selector a list response echoes
// (ListMeta.ShardInfo), "" if none.
func shardInfoSelector(list runtime.Object) string {
	switch l := list.(type) {
	case metav1.ShardedListInterface:
		if info := l.GetShardInfo(); info != nil {
			return info.Selector
		}
	case *unstructured.UnstructuredList:
		s, _, _ := unstructured.NestedString(l.Object, "metadata", "shardInfo", "selector")
		return s
	}
	return ""
}
