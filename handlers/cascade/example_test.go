package cascade_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic/dynamicinformer"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/handlers/cascade"
)

// object returns an unstructured object.
func object(apiVersion, kind, namespace, name, uid string, labels map[string]string) *unstructured.Unstructured {
	o := &unstructured.Unstructured{}
	o.SetAPIVersion(apiVersion)
	o.SetKind(kind)
	o.SetNamespace(namespace)
	o.SetName(name)
	o.SetUID(types.UID(uid))
	o.SetLabels(labels)
	return o
}

// A Project's ConfigMaps live in several namespaces, labelled with the
// Project's UID. When the Project is deleted, the handler deletes them,
// and only them.
func ExampleNew() {
	projects := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "projects"}
	configMaps := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{projects: "ProjectList", configMaps: "ConfigMapList"},
		object("example.com/v1", "Project", "team-a", "web", "1111", nil),
		object("v1", "ConfigMap", "team-a", "web-settings", "2222", map[string]string{"example.com/project-uid": "1111"}),
		object("v1", "ConfigMap", "monitoring", "web-dashboards", "3333", map[string]string{"example.com/project-uid": "1111"}),
		object("v1", "ConfigMap", "monitoring", "unrelated", "4444", nil),
	)
	factory := dynamicinformer.NewDynamicSharedInformerFactory(client, 0)

	h, err := cascade.New(client, configMaps,
		cascade.WithUIDLabel("example.com/project-uid"),
		cascade.InAllNamespaces(),
		cascade.WithInformer(factory.ForResource(projects).Informer()))
	if err != nil {
		panic(err)
	}
	loop := kubehandler.NewEventLoop("projects")
	loop.Register(h)
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan error)
	go func() { done <- loop.Run(ctx, 2) }()
	factory.WaitForCacheSync(ctx.Done())

	if err := client.Resource(projects).Namespace("team-a").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		panic(err)
	}
	var left *unstructured.UnstructuredList
	_ = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		left, err = client.Resource(configMaps).List(ctx, metav1.ListOptions{})
		return err == nil && len(left.Items) == 1, err
	})
	for _, cm := range left.Items {
		fmt.Println("left:", cm.GetNamespace()+"/"+cm.GetName())
	}

	cancel()
	<-done
	factory.Shutdown()
	// Output:
	// left: monitoring/unrelated
}

// Without a label to select dependents by, the deletion of any upstream
// object would delete every dependent in scope: New refuses, unless told
// plainly that this is meant.
func ExampleDangerouslySelectEverything() {
	configMaps := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())

	_, err := cascade.New(client, configMaps, cascade.InSameNamespace())
	fmt.Println(errors.Is(err, cascade.ErrNoLabel))
	fmt.Println(err)

	_, err = cascade.New(client, configMaps, cascade.InSameNamespace(), cascade.DangerouslySelectEverything())
	fmt.Println(err)
	// Output:
	// true
	// cascade: no dependent label configured: without WithUIDLabel or WithNameLabel, deleting any upstream object would delete all configmaps in scope; if that is what you want, say DangerouslySelectEverything()
	// <nil>
}
