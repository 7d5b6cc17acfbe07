package kubehandler

import (
	"context"

	"k8s.io/client-go/tools/cache"
)

// DefaultHandler implements EventHandler with callbacks that do nothing and
// return nil. Embed it in your handler and override the callbacks you need:
//
//	type DeploymentsHandler struct {
//		kubehandler.DefaultHandler
//	}
//
// Synced may be left nil: the informer's HasSynced is used. An empty Name
// becomes the embedding type's name when the handler is registered.
type DefaultHandler struct {
	Synced   cache.InformerSynced
	Informer cache.SharedInformer
	Name     string
}

var _ EventHandler = (*DefaultHandler)(nil)

// GetName returns h.Name.
func (h *DefaultHandler) GetName() string { return h.Name }

// GetSynced returns h.Synced.
func (h *DefaultHandler) GetSynced() cache.InformerSynced { return h.Synced }

// GetInformer returns h.Informer.
func (h *DefaultHandler) GetInformer() cache.SharedInformer { return h.Informer }

// AddFunc does nothing and returns nil.
func (h *DefaultHandler) AddFunc(ctx context.Context, namespace, name string) error { return nil }

// UpdateFunc does nothing and returns nil.
func (h *DefaultHandler) UpdateFunc(ctx context.Context, namespace, name string) error { return nil }

// DeleteFunc does nothing and returns nil.
func (h *DefaultHandler) DeleteFunc(ctx context.Context, namespace, name string) error { return nil }
