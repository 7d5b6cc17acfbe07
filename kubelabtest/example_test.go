package kubelabtest_test

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehandler/kubehandler/kubelabtest"
)

// Default is the lab that TestMain's Main started: a real apiserver.
func ExampleDefault() {
	lab := kubelabtest.Default()
	v, err := lab.Client().Discovery().ServerVersion()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("kube-apiserver", v.GitVersion)

	ctx := context.Background()
	cms := lab.Client().CoreV1().ConfigMaps(metav1.NamespaceDefault)
	created, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "example-"}}, metav1.CreateOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cms.Delete(ctx, created.Name, metav1.DeleteOptions{})
	stale := created.DeepCopy()
	created.Data = map[string]string{"k": "v"}
	if _, err := cms.Update(ctx, created, metav1.UpdateOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	_, err = cms.Update(ctx, stale, metav1.UpdateOptions{})
	fmt.Println("stale update refused:", err != nil)
	// Output:
	// kube-apiserver v1.37.2
	// stale update refused: true
}
