// Package kubehandlertest tests kubehandler handlers the way kubehandler
// tests itself: real client-go informers over an in-memory source, the
// handler on a real EventLoop, and a recorder that checks the loop's
// promises while the test runs. No server, no network, no binaries to
// download; a test takes milliseconds.
//
//   - Source is the API server's storage of one resource, in memory. A
//     real cache.SharedIndexInformer lists and watches it (NewInformer).
//     The test creates, updates and deletes objects; resourceVersions are
//     set as the server sets them. BreakWatches makes the informers
//     relist, and DeleteUnseen deletes an object so that the informers only
//     learn of it by relisting: the handler gets a delete from a
//     cache.DeletedFinalStateUnknown tombstone, as on a real cluster after
//     a long disconnection. Serve plugs the Source into a fake clientset,
//     so that what the handler writes comes back through the informers,
//     with the server's conflicts and preconditions (a fake clientset alone
//     ignores resourceVersions).
//     TypedSource adds typed Create, Update and Get: NewConfigMapSource,
//     NewUnstructuredSource, NewTypedSource for any runtime.Object.
//   - Start runs an EventLoop (or WorkQueue) for the length of the test,
//     with the informer factories it needs, and stops it cleanly when the
//     test ends; goleak.VerifyTestMain then finds nothing left.
//   - Record wraps your handler (NewRecorder makes one that only records).
//     The Recorder records every call with its Event, fails the test as soon
//     as two calls of one object are in flight at once (promise 1), and
//     Wait waits, with a deadline and without sleeping, until every
//     object's last call saw its final state (promise 3).
//
// A test to start from (a handler of ConfigMaps; pattern_test.go runs it):
//
//	func TestMyHandler(t *testing.T) {
//		cms := kubehandlertest.NewConfigMapSource()
//		cms.Create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}})
//
//		myHandler := &MyHandler{
//			DefaultHandler: kubehandler.DefaultHandler{Name: "configmaps", Informer: cms.Informer(t)},
//		}
//		h := kubehandlertest.Record(t, myHandler)
//		loop := kubehandler.NewEventLoop("test")
//		loop.Register(h)
//		kubehandlertest.Start(t, loop, 4)
//
//		cms.Update(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}, Data: map[string]string{"k": "v"}})
//		cms.Create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b"}, Data: map[string]string{"k": "w"}})
//		cms.DeleteUnseen("ns", "a") // seen by relisting: a tombstone
//		h.Wait(t, cms.State("configmaps"))
//		// Now look at what myHandler did.
//	}
//
// and in the package's main_test.go:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
//
// A handler that reads listers and writes through clients gets them from
// the Source too: an informer's indexer makes a lister
// (listers.NewFooLister(informer.GetIndexer())), and Serve answers a fake
// clientset's requests:
//
//	deployments := kubehandlertest.NewTypedSource[*appsv1.Deployment](func() runtime.Object { return &appsv1.DeploymentList{} })
//	client := kubefake.NewClientset()
//	deployments.Serve(client, "deployments")
//
// sample-controller's pkg/controller/loop_test.go does both.
//
// # Choices
//
//   - A Source's own Create, Update and Delete are the test's hand: they
//     store objects as given and never fail but for a mistake in the test
//     (a Create of an object that exists, an Update of one that does not),
//     which panics. Requests through Serve are answered as the API server
//     would answer them, errors included.
//   - Objects are shared, not copied, between a Source and its informers,
//     as in an informer's cache: do not modify an object after giving it to
//     a Source, nor one a Source or a lister returned.
//   - The Recorder fails the test with t.Errorf from the worker goroutine
//     that saw the overlap, and the test goes on; Wait and WaitFunc fail it
//     with t.Fatalf, so call them from the test's goroutine.
//   - Waits end after WaitTimeout (30s), or before the test's own
//     deadline (go test -timeout) if that is nearer, so that a test fails
//     with its own message rather than a panic of the test binary.
//   - NewRecorder takes a nil testing.TB for harnesses that have no test
//     to fail (benchmarks, shared fixtures): they check Overlaps themselves.
//   - Run's context in Start is not the test's: t.Context is cancelled
//     before cleanups run, and Start's cleanup stops the loop itself.
//
// To test against a real API server and etcd instead, see the kubelabtest
// package.
package kubehandlertest
