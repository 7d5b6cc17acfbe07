package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/handlers/cascade"
	"github.com/kubehandler/kubehandler/handlers/pause"
	samplev1alpha1 "github.com/kubehandler/kubehandler/sample-controller/pkg/apis/samplecontroller/v1alpha1"
	"github.com/kubehandler/kubehandler/sample-controller/pkg/generated/clientset/versioned"
	informers "github.com/kubehandler/kubehandler/sample-controller/pkg/generated/informers/externalversions"
)

// Name names the controller: its workqueue, its metrics' queue label, and
// the field manager of its writes.
const Name = "sample-controller"

// Config is what a Controller needs. The clients are required.
type Config struct {
	KubeClient    kubernetes.Interface
	FooClient     versioned.Interface
	DynamicClient dynamic.Interface
	// LoopOptions are passed to the EventLoop (kubehandler.WithMetrics,
	// kubehandler.WithLeaderElection, ...).
	LoopOptions []kubehandler.Option
	// EventRecorder records Kubernetes Events about Foos: Deployments
	// created and scaled, pauses and resumes. Optional; see
	// kubehandler.NewEventRecorder.
	EventRecorder record.EventRecorder
	// ResyncPeriod is the informers' resync period; 0, the default, means
	// none. kubehandler drops resyncs unless kubehandler.WithResyncEvents is
	// among LoopOptions.
	ResyncPeriod time.Duration
	// Sharding, when set, makes this controller one replica of a ring
	// (kubehandler.WithSharding) that splits the Foos between its
	// replicas. New adds the Deployment handler to its Secondary handlers;
	// leave that field empty. Do not combine it with
	// kubehandler.WithLeaderElection in LoopOptions.
	Sharding *kubehandler.Sharding
}

// DeploymentHandlerName is the name the Deployment handler is registered
// under: with Config.Sharding, a secondary handler of the ring.
const DeploymentHandlerName = "Deployment"

// Controller runs the sample controller's handlers on one EventLoop.
type Controller struct {
	loop          kubehandler.EventLoop
	kubeInformers kubeinformers.SharedInformerFactory
	fooInformers  informers.SharedInformerFactory

	mu      sync.Mutex
	running bool
}

// New builds a controller: its informers, handlers and EventLoop (see the
// package doc). It starts nothing; Run does.
func New(cfg Config) (*Controller, error) {
	if cfg.KubeClient == nil || cfg.FooClient == nil || cfg.DynamicClient == nil {
		return nil, errors.New("controller: Config needs KubeClient, FooClient and DynamicClient")
	}
	loopOptions := cfg.LoopOptions
	if cfg.Sharding != nil {
		// Sharded, the Foos are split between the replicas by the hash of
		// their UIDs: the Foo handler (behind pause) and the cascade
		// handler, both on the Foo informer, see only the Foos of this
		// replica's slots. The Deployment handler is secondary: every
		// replica watches every Deployment and dispatches each event, as
		// a Deployment's UID is not its Foo's and would hash elsewhere.
		// Its Enqueue of the owning Foo returns false on the replicas that
		// do not hold the Foo's slot, and the one that does sees the same
		// Deployment event and queues the Foo there. So a Deployment
		// changed by hand is put back by its Foo's replica, and by no
		// other.
		sharding := *cfg.Sharding
		sharding.Secondary = append(slices.Clone(sharding.Secondary), DeploymentHandlerName)
		loopOptions = append(slices.Clone(loopOptions), kubehandler.WithSharding(sharding))
	}
	c := &Controller{
		loop:          kubehandler.NewEventLoop(Name, loopOptions...),
		kubeInformers: kubeinformers.NewSharedInformerFactory(cfg.KubeClient, cfg.ResyncPeriod),
		fooInformers:  informers.NewSharedInformerFactory(cfg.FooClient, cfg.ResyncPeriod),
	}
	fooInformer := c.fooInformers.Samplecontroller().V1alpha1().Foos()
	deploymentInformer := c.kubeInformers.Apps().V1().Deployments()

	foos := &FooHandler{
		DefaultHandler: kubehandler.DefaultHandler{Name: "Foo", Informer: fooInformer.Informer()},
		KubeClient:     cfg.KubeClient,
		FooClient:      cfg.FooClient,
		Foos:           fooInformer.Lister(),
		Deployments:    deploymentInformer.Lister(),
		Recorder:       cfg.EventRecorder,
	}
	var pauseOptions []pause.Option
	if cfg.EventRecorder != nil {
		pauseOptions = append(pauseOptions, pause.WithEventRecorder(cfg.EventRecorder))
	}
	// The pause handler takes the Foo handler's place (and name): it passes
	// on the events of Foos without the pause label, and writes the Paused
	// condition of the others through the Foos' status subresource.
	pausable, err := pause.New(foos, PauseLabel, func(ctx context.Context, namespace, name string, pt types.PatchType, data []byte, subresources ...string) error {
		_, err := cfg.FooClient.SamplecontrollerV1alpha1().Foos(namespace).Patch(ctx, name, pt, data, metav1.PatchOptions{FieldManager: Name}, subresources...)
		return err
	}, pauseOptions...)
	if err != nil {
		return nil, err
	}
	c.loop.Register(pausable)

	c.loop.Register(&DeploymentHandler{
		DefaultHandler: kubehandler.DefaultHandler{Name: DeploymentHandlerName, Informer: deploymentInformer.Informer()},
		Deployments:    deploymentInformer.Lister(),
		Foos:           fooInformer.Lister(),
		FooHandler:     pausable.GetName(),
		Paused:         func(foo *samplev1alpha1.Foo) bool { return pause.IsPaused(foo, PauseLabel) },
	})

	// The cascade handler sees the Foos too, under a name of its own: it
	// adds Finalizer to each Foo, and when a Foo is deleted it deletes the
	// ConfigMaps labelled with the Foo's UID in every namespace, then
	// removes the finalizer. A paused Foo is deleted with its ConfigMaps as
	// well: pausing holds back changes to its Deployment, not its deletion.
	dependents, err := cascade.New(cfg.DynamicClient, corev1.SchemeGroupVersion.WithResource("configmaps"),
		cascade.WithName("FooDependents"),
		cascade.WithInformer(fooInformer.Informer()),
		cascade.WithUIDLabel(DependentLabel),
		cascade.InAllNamespaces(),
		cascade.WithFinalizer(Finalizer, samplev1alpha1.SchemeGroupVersion.WithResource("foos")),
	)
	if err != nil {
		return nil, err
	}
	c.loop.Register(dependents)

	return c, nil
}

// Run starts the informers and runs the EventLoop with threadiness workers
// until ctx is cancelled (it then returns nil) or the loop fails. It returns
// once every handler call and informer has stopped. A Controller runs once.
func (c *Controller) Run(ctx context.Context, threadiness int) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errors.New("controller: Run called twice")
	}
	c.running = true
	c.mu.Unlock()

	// Informers stop when ctx is done or the loop returns early.
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		c.kubeInformers.Shutdown()
		c.fooInformers.Shutdown()
	}()
	c.kubeInformers.Start(ctx.Done())
	c.fooInformers.Start(ctx.Done())
	if err := c.loop.Run(ctx, threadiness); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	return nil
}

// Readiness is the check of a /readyz endpoint (kubehandler.ProbeHandler):
// it passes once Run's informers have synced and, with leader election,
// while this replica leads or is a standby in touch with the lease; with
// Config.Sharding, once it holds its share of the ring's slots or knows it
// is a spare.
func (c *Controller) Readiness(req *http.Request) error {
	return kubehandler.Readiness(c.loop)(req)
}

// Liveness is the check of a /healthz endpoint: it fails while a handler
// call has run longer than kubehandler.WithLivenessTimeout allows.
func (c *Controller) Liveness(req *http.Request) error {
	return kubehandler.Liveness(c.loop)(req)
}

// DebugHandler serves kubehandler's debug view of the controller's loop
// (kubehandler.DebugHandler): keys waiting, calls in flight, failing keys
// with their last error. Call it only to serve it: from then on the loop
// records when keys are queued and calls start.
func (c *Controller) DebugHandler() http.Handler {
	return kubehandler.DebugHandler(c.loop)
}
