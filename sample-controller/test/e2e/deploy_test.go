package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// serviceAccount is the controller's identity in artifacts/deploy.
const serviceAccount = "system:serviceaccount:sample-controller:sample-controller"

// applyManifests creates the objects of the YAML files, as kubectl create -f.
func applyManifests(ctx context.Context, cfg *rest.Config, files ...string) error {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	if err != nil {
		return err
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			obj := &unstructured.Unstructured{}
			if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if len(obj.Object) == 0 {
				continue
			}
			gvk := obj.GroupVersionKind()
			mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			var r dynamic.ResourceInterface = client.Resource(mapping.Resource)
			if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
				r = client.Resource(mapping.Resource).Namespace(obj.GetNamespace())
			}
			if _, err := r.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
				return fmt.Errorf("%s: creating %s %s: %w", file, gvk.Kind, obj.GetName(), err)
			}
		}
	}
	return nil
}

// writeImpersonatingKubeconfig writes to path a copy of the kubeconfig at
// from whose user acts as user (the API server checks that user's
// permissions).
func writeImpersonatingKubeconfig(from, path, user string) error {
	cfg, err := clientcmd.LoadFromFile(from)
	if err != nil {
		return err
	}
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = user
	}
	return clientcmd.WriteToFile(*cfg, path)
}
