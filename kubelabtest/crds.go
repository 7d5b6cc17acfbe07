package kubelabtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// establishedDelay is how long after a CRD becomes Established the
// apiserver delays the first creates of its objects (by two seconds each,
// apiextensions-apiserver's crdHandler, for HA setups); the condition's time
// has a resolution of one second.
const establishedDelay = 2*time.Second + 100*time.Millisecond

// InstallCRDs creates (or updates) the CustomResourceDefinitions in
// manifests, YAML with one or more documents or JSON, and returns once each
// is Established, a list of each served version of its resource succeeds,
// and creates of its objects are no longer delayed (the apiserver slows
// them down for two seconds after a CRD is established). It takes about
// three seconds, so install CRDs once, up front (Options.CRDs).
func (l *Lab) InstallCRDs(ctx context.Context, manifests ...[]byte) error {
	var crds []*unstructured.Unstructured
	for i, m := range manifests {
		objs, err := decodeManifest(m)
		if err != nil {
			return fmt.Errorf("CRD manifest %d: %w", i, err)
		}
		crds = append(crds, objs...)
	}
	for _, crd := range crds {
		if crd.GetKind() != "CustomResourceDefinition" {
			return fmt.Errorf("%s %q is not a CustomResourceDefinition", crd.GetKind(), crd.GetName())
		}
	}

	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	client := l.dynamic.Resource(crdResource)
	for _, crd := range crds {
		_, err := client.Create(ctx, crd, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			err = updateCRD(ctx, l, crd)
		}
		if err != nil {
			return fmt.Errorf("installing CRD %s: %w", crd.GetName(), err)
		}
	}

	var lastEstablished time.Time
	for _, crd := range crds {
		var resources []schema.GroupVersionResource
		err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			got, err := client.Get(ctx, crd.GetName(), metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			established, ok := establishedSince(got)
			if ok && established.After(lastEstablished) {
				lastEstablished = established
			}
			resources = servedResources(got)
			return ok, nil
		})
		if err != nil {
			return fmt.Errorf("waiting for CRD %s to be established: %w", crd.GetName(), err)
		}
		for _, gvr := range resources {
			var listErr error
			err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
				_, listErr = l.dynamic.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
				return listErr == nil, nil
			})
			if err != nil {
				return fmt.Errorf("waiting until %s can be listed: %w (last error: %v)", gvr, err, listErr)
			}
		}
	}

	if d := time.Until(lastEstablished.Add(establishedDelay)); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func updateCRD(ctx context.Context, l *Lab, crd *unstructured.Unstructured) error {
	client := l.dynamic.Resource(crdResource)
	existing, err := client.Get(ctx, crd.GetName(), metav1.GetOptions{})
	if err != nil {
		return err
	}
	crd = crd.DeepCopy()
	crd.SetResourceVersion(existing.GetResourceVersion())
	_, err = client.Update(ctx, crd, metav1.UpdateOptions{})
	return err
}

// decodeManifest decodes YAML documents or JSON objects, skipping empty ones.
func decodeManifest(m []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(m), 4096)
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(obj) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: obj})
	}
}

// establishedSince returns when the CRD's Established condition became true.
func establishedSince(crd *unstructured.Unstructured) (time.Time, bool) {
	conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conditions {
		c, _ := c.(map[string]any)
		if c["type"] != "Established" || c["status"] != "True" {
			continue
		}
		var t metav1.Time
		if s, ok := c["lastTransitionTime"].(string); ok {
			_ = t.UnmarshalQueryParameter(s)
		}
		return t.Time, true
	}
	return time.Time{}, false
}

// servedResources lists the resource of each served version of a CRD.
func servedResources(crd *unstructured.Unstructured) []schema.GroupVersionResource {
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	var gvrs []schema.GroupVersionResource
	for _, v := range versions {
		v, _ := v.(map[string]any)
		if served, _ := v["served"].(bool); !served {
			continue
		}
		name, _ := v["name"].(string)
		gvrs = append(gvrs, schema.GroupVersionResource{Group: group, Version: name, Resource: plural})
	}
	return gvrs
}
