package kubelabtest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// StopAPIServer stops the apiserver process gracefully (SIGTERM: open
// watches are ended, new connections refused) and returns once it has
// exited, in about a second. etcd and the controller manager keep running,
// and etcd keeps the data. Until StartAPIServer, every request fails.
func (l *Lab) StopAPIServer(ctx context.Context) error {
	return l.controlPost(ctx, "/apiserver/stop")
}

// KillAPIServer stops the apiserver process with SIGKILL, like a crash:
// every open connection is cut at once. Otherwise as StopAPIServer.
func (l *Lab) KillAPIServer(ctx context.Context) error {
	return l.controlPost(ctx, "/apiserver/stop?kill=true")
}

// StartAPIServer starts the apiserver again on the same address and returns
// once its /readyz answers 200 (about two seconds). Clients made from Config
// reconnect by themselves. It only waits if the apiserver is running.
func (l *Lab) StartAPIServer(ctx context.Context) error {
	return l.controlPost(ctx, "/apiserver/start")
}

// RestartAPIServer is StopAPIServer followed by StartAPIServer.
func (l *Lab) RestartAPIServer(ctx context.Context) error {
	if err := l.StopAPIServer(ctx); err != nil {
		return err
	}
	return l.StartAPIServer(ctx)
}

func (l *Lab) controlPost(ctx context.Context, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://kubelab"+path, nil)
	if err != nil {
		return err
	}
	resp, err := l.control.Do(req)
	if err != nil {
		return fmt.Errorf("kubelab control %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("kubelab control %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
