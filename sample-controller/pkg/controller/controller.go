package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kubehandler/kubehandler"
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
	// LoopOptions are passed to the EventLoop (kubehandler.WithMetrics, ...).
	LoopOptions []kubehandler.Option
	// ResyncPeriod is the informers' resync period; 0, the default, means
	// none. kubehandler drops resyncs unless kubehandler.WithResyncEvents is
	// among LoopOptions.
	ResyncPeriod time.Duration
}

// Controller runs the sample controller's handlers on one EventLoop.
type Controller struct {
	loop          kubehandler.EventLoop
	kubeInformers kubeinformers.SharedInformerFactory
	fooInformers  informers.SharedInformerFactory
	synced        []cache.InformerSynced

	mu      sync.Mutex
	running bool
}

// New builds a controller: its informers, handlers and EventLoop. It starts
// nothing; Run does.
func New(cfg Config) (*Controller, error) {
	if cfg.KubeClient == nil || cfg.FooClient == nil || cfg.DynamicClient == nil {
		return nil, errors.New("controller: Config needs KubeClient, FooClient and DynamicClient")
	}
	c := &Controller{
		loop:          kubehandler.NewEventLoop(Name, cfg.LoopOptions...),
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
	}
	c.loop.Register(foos)
	c.loop.Register(&DeploymentHandler{
		DefaultHandler: kubehandler.DefaultHandler{Name: "Deployment", Informer: deploymentInformer.Informer()},
		Deployments:    deploymentInformer.Lister(),
		Foos:           fooInformer.Lister(),
		SyncFoo:        foos.Sync,
		Paused:         func(foo *samplev1alpha1.Foo) bool { _, ok := foo.Labels[PauseLabel]; return ok },
	})
	c.synced = []cache.InformerSynced{fooInformer.Informer().HasSynced, deploymentInformer.Informer().HasSynced}
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

// HasSynced reports whether the informers have synced: until then the
// controller does nothing, and is not ready.
func (c *Controller) HasSynced() bool {
	for _, s := range c.synced {
		if !s() {
			return false
		}
	}
	return true
}
