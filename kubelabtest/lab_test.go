package kubelabtest

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

func TestVersionAndObjects(t *testing.T) {
	lab := Default()
	client := kubernetes.NewForConfigOrDie(lab.Config())
	v, err := client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != "v1.37.2" {
		t.Errorf("server version %q, want v1.37.2 (are the build's ldflags set?)", v.GitVersion)
	}

	ns := lab.Namespace(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}, Data: map[string]string{"k": "v"}}
	if _, err := client.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := client.CoreV1().ConfigMaps(ns).Get(t.Context(), "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["k"] != "v" {
		t.Errorf("data = %v", got.Data)
	}
}

func TestCustomResourceCreateIsNotDelayed(t *testing.T) {
	lab := Default()
	ns := lab.Namespace(t)
	widgets := lab.Dynamic().Resource(schema.GroupVersionResource{Group: "kubelab.example.com", Version: "v1", Resource: "widgets"})
	w := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kubelab.example.com/v1",
		"kind":       "Widget",
		"metadata":   map[string]any{"name": "w"},
		"spec":       map[string]any{"size": int64(3)},
	}}
	start := time.Now()
	if _, err := widgets.Namespace(ns).Create(t.Context(), w, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// apiextensions-apiserver sleeps 2s in creates within 2s of the CRD
	// becoming Established; InstallCRDs waits that out.
	if d := time.Since(start); d > time.Second {
		t.Errorf("creating the first Widget took %v", d)
	}
}

func TestWatchReconnectsAfterAPIServerRestart(t *testing.T) {
	lab := Default()
	client := kubernetes.NewForConfigOrDie(lab.Config())
	ns := lab.Namespace(t)

	ctx, cancel := context.WithCancel(t.Context())
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	defer factory.Shutdown() // waits for the informer to stop
	defer cancel()           // stops it (before Shutdown)
	configMaps := factory.Core().V1().ConfigMaps()
	informer := configMaps.Informer()
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		t.Fatal("informer did not sync")
	}

	create := func(name string) {
		t.Helper()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if _, err := client.CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	seen := func(name string) {
		t.Helper()
		err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			_, err := configMaps.Lister().ConfigMaps(ns).Get(name)
			return err == nil, nil
		})
		if err != nil {
			t.Fatalf("informer never saw ConfigMap %s: %v", name, err)
		}
	}

	create("before")
	seen("before")

	start := time.Now()
	if err := lab.StopAPIServer(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("apiserver stopped after %v", time.Since(start))
	if _, err := client.CoreV1().ConfigMaps(ns).Get(t.Context(), "before", metav1.GetOptions{}); err == nil {
		t.Error("a request succeeded while the apiserver was stopped")
	}
	start = time.Now()
	if err := lab.StartAPIServer(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("apiserver ready again after %v", time.Since(start))

	create("after") // etcd kept the data, and the informer resumes
	seen("after")
	if _, err := configMaps.Lister().ConfigMaps(ns).Get("before"); err != nil {
		t.Errorf("ConfigMap created before the restart: %v", err)
	}
}

func TestKillAPIServerEndsWatches(t *testing.T) {
	lab := Default()
	client := kubernetes.NewForConfigOrDie(lab.Config())
	ns := lab.Namespace(t)

	w, err := client.CoreV1().ConfigMaps(ns).Watch(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := lab.KillAPIServer(t.Context()); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-w.ResultChan():
		case <-timeout:
			t.Fatal("watch still open 10s after the apiserver was killed")
		}
	}
	if err := lab.RestartAPIServer(t.Context()); err != nil { // stopped: starts it
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{}); err != nil {
		t.Errorf("after the restart: %v", err)
	}
}

func TestNamespaceIsDeletedAfterTest(t *testing.T) {
	lab := Default()
	var ns string
	t.Run("sub", func(t *testing.T) {
		ns = lab.Namespace(t)
		if !strings.HasPrefix(ns, "testnamespaceisdeletedaftertest-sub-") {
			t.Errorf("namespace %q is not named after the test", ns)
		}
	})
	// The namespace controller empties and removes it.
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := lab.Client().CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("namespace %s still there: %v", ns, err)
	}
}

func TestForegroundDeletionFinishes(t *testing.T) {
	lab := Default()
	client := lab.Client()
	ns := lab.Namespace(t)
	configMaps := client.CoreV1().ConfigMaps(ns)

	owner, err := configMaps.Create(t.Context(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dependent := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: "dependent",
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID,
			BlockOwnerDeletion: ptr.To(true),
		}},
	}}
	if _, err := configMaps.Create(t.Context(), dependent, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	err = configMaps.Delete(t.Context(), owner.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)})
	if err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := configMaps.Get(ctx, owner.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("owner not deleted: %v", err)
	}
	t.Logf("foreground deletion finished after %v", time.Since(start))
	if _, err := configMaps.Get(t.Context(), dependent.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("dependent after its owner's foreground deletion: %v", err)
	}
}

// TestSecondLabAndKilledSupervisor runs a second lab beside the default one,
// then SIGKILLs its supervisor: its child processes must die with it, and
// its directory must be found stale and removed.
func TestSecondLabAndKilledSupervisor(t *testing.T) {
	start := time.Now()
	lab, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second lab ready after %v", time.Since(start))
	defer lab.Stop()
	if lab.Config().Host == Default().Config().Host {
		t.Fatalf("both labs serve on %s", lab.Config().Host)
	}
	// Not lab.Namespace: its cleanup would fail on the killed lab.
	ns, err := lab.Client().CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "only-in-second-lab"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Default().Client().CoreV1().Namespaces().Get(t.Context(), ns.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s of the second lab in the default lab: %v", ns.Name, err)
	}

	st := labStatus(t, lab)
	if !st.APIServer.Running || st.APIServer.PID == 0 {
		t.Fatalf("status: %+v", st)
	}
	if err := lab.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-lab.exited
	err = wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return syscall.Kill(st.APIServer.PID, 0) == syscall.ESRCH, nil
	})
	if err != nil {
		t.Errorf("apiserver pid %d still alive after its supervisor was killed", st.APIServer.PID)
	}

	removeStaleDirs()
	if _, err := os.Stat(lab.Dir()); !os.IsNotExist(err) {
		t.Errorf("directory of the killed lab not removed: %v", err)
	}
	if _, err := os.Stat(Default().Dir()); err != nil {
		t.Errorf("directory of the running lab: %v", err)
	}
	if err := lab.Stop(); err == nil {
		t.Error("Stop of a killed lab returned no error")
	}
}

type status struct {
	APIServer struct {
		Running bool `json:"running"`
		PID     int  `json:"pid"`
	} `json:"apiserver"`
}

func labStatus(t *testing.T, l *Lab) status {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://kubelab/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := l.control.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}
