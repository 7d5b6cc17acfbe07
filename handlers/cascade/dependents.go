package cascade

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"

	"github.com/kubehandler/kubehandler"
)

// deleteDependents deletes the dependents of up that are not being deleted
// yet and returns how many may still exist: those being deleted, those just
// deleted (a foreground deletion takes a while) and those that failed.
func (h *Handler) deleteDependents(ctx context.Context, up upstream) (remaining int, err error) {
	selector, err := h.selector(up)
	if err != nil {
		return 0, err
	}
	deps, err := h.list(ctx, up, selector)
	if err != nil {
		return 0, err
	}
	logger := klog.FromContext(ctx)
	var retriable, permanent []error
	for _, d := range deps {
		if !h.inScope(up, d) || (up.uid != "" && d.GetUID() == up.uid) {
			continue // the upstream itself is never its own dependent
		}
		ref := klog.KObj(d)
		if d.GetDeletionTimestamp() != nil {
			remaining++
			continue
		}
		if h.opts.dryRun {
			logger.Info("Dry run: would delete dependent", "resource", h.dependents.GroupResource(), "dependent", ref, "uid", d.GetUID())
			continue
		}
		err := h.delete(ctx, d)
		switch {
		case err == nil:
			logger.V(2).Info("Deleted dependent", "resource", h.dependents.GroupResource(), "dependent", ref)
			remaining++ // until its own dependents are gone (foreground)
		case apierrors.IsNotFound(err):
			// Gone already: done.
		case apierrors.IsConflict(err):
			// The UID precondition failed: the object listed is gone, and
			// one of the same name took its place. It is not deleted; the
			// next look at the dependents (if any) decides about it.
			logger.V(2).Info("Dependent replaced since it was listed; not deleted", "resource", h.dependents.GroupResource(), "dependent", ref)
			remaining++
		case apierrors.IsForbidden(err):
			remaining++
			permanent = append(permanent, fmt.Errorf("deleting %s %s: %w", h.dependents.GroupResource(), ref, err))
		default:
			remaining++
			retriable = append(retriable, fmt.Errorf("deleting %s %s: %w", h.dependents.GroupResource(), ref, err))
		}
	}
	switch {
	case len(retriable) > 0:
		return remaining, fmt.Errorf("cascade: dependents of %s: %w", up, errors.Join(append(retriable, permanent...)...))
	case len(permanent) > 0:
		return remaining, kubehandler.Terminal(fmt.Errorf("cascade: dependents of %s: %w", up, errors.Join(permanent...)))
	}
	return remaining, nil
}

// delete deletes the dependent d in the foreground, on condition that it is
// still the object listed (its UID).
func (h *Handler) delete(ctx context.Context, d metav1.Object) error {
	propagation := metav1.DeletePropagationForeground
	opts := metav1.DeleteOptions{PropagationPolicy: &propagation}
	if uid := d.GetUID(); uid != "" {
		opts.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	return h.client.Resource(h.dependents).Namespace(d.GetNamespace()).Delete(ctx, d.GetName(), opts)
}

// selector returns the label selector of up's dependents.
func (h *Handler) selector(up upstream) (labels.Selector, error) {
	if h.opts.everything {
		return labels.Everything(), nil
	}
	value := up.name
	if h.opts.labelValue == byUID {
		if up.uid == "" {
			return nil, kubehandler.Terminal(fmt.Errorf("cascade: the UID of %s is unknown (its delete carries no final state): "+
				"its dependents cannot be selected", up))
		}
		value = string(up.uid)
	}
	if errs := content.IsLabelValue(value); len(errs) > 0 {
		return nil, kubehandler.Terminal(fmt.Errorf("cascade: %s: %q cannot be a label value (%s): its dependents cannot be selected; "+
			"select them by UID (WithUIDLabel)", up, value, strings.Join(errs, "; ")))
	}
	return labels.SelectorFromValidatedSet(labels.Set{h.opts.labelKey: value}), nil
}

// listNamespace returns the namespace to list dependents of up in, "" for
// all.
func (h *Handler) listNamespace(up upstream) string {
	switch h.opts.scope {
	case oneNamespace:
		return h.opts.namespace
	case allNamespaces:
		return metav1.NamespaceAll
	default:
		return up.namespace
	}
}

// inScope reports whether the dependent d is in the scope of up: a list of
// namespace "" returns every namespace's objects, of which only the
// cluster-scoped ones are in the scope of a cluster-scoped upstream.
func (h *Handler) inScope(up upstream, d metav1.Object) bool {
	return h.opts.scope == allNamespaces || d.GetNamespace() == h.listNamespace(up)
}

// list returns the dependents selector selects where up's are looked for:
// from the dependents' informer, or from the apiserver.
func (h *Handler) list(ctx context.Context, up upstream, selector labels.Selector) ([]metav1.Object, error) {
	ns := h.listNamespace(up)
	if h.opts.dependentInformer != nil {
		lister := h.opts.dependentInformer.Lister()
		var objs []runtime.Object
		var err error
		if ns == metav1.NamespaceAll {
			objs, err = lister.List(selector)
		} else {
			objs, err = lister.ByNamespace(ns).List(selector)
		}
		if err != nil {
			return nil, fmt.Errorf("cascade: listing %s from the cache: %w", h.dependents.GroupResource(), err)
		}
		out := make([]metav1.Object, 0, len(objs))
		for _, o := range objs {
			m, err := meta.Accessor(o)
			if err != nil {
				return nil, kubehandler.Terminal(fmt.Errorf("cascade: %w", err))
			}
			out = append(out, m)
		}
		return out, nil
	}

	list, err := h.client.Resource(h.dependents).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		err = fmt.Errorf("cascade: listing %s of %s: %w", h.dependents.GroupResource(), up, err)
		if apierrors.IsForbidden(err) {
			return nil, kubehandler.Terminal(err)
		}
		return nil, err
	}
	out := make([]metav1.Object, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}
