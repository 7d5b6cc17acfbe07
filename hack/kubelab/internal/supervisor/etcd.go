package supervisor

import (
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/storage/wal"
)

// startEtcd runs a single-member etcd inside this process, with its data in
// dir/etcd and its client endpoint on the unix socket dir/etcd.sock. It keeps
// running while the apiserver process is stopped and started again, so the
// stored objects survive an apiserver restart.
func startEtcd(dir, logFile string) (*embed.Etcd, string, error) {
	// etcd preallocates each WAL segment (64 MiB by default) twice; a lab
	// writes little.
	wal.SegmentSizeBytes = 4 << 20

	cfg := embed.NewConfig()
	cfg.Name = "kubelab"
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.UnsafeNoFsync = true // test data: speed over durability
	// A single member elects itself after one election timeout: keep it short.
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	cfg.Logger = "zap"
	cfg.LogLevel = "warn"
	cfg.LogOutputs = []string{logFile}

	client := url.URL{Scheme: "unix", Path: filepath.Join(dir, "etcd.sock")}
	cfg.ListenClientUrls = []url.URL{client}
	cfg.AdvertiseClientUrls = []url.URL{client}
	// The peer port is never used by a single member; the kernel picks it.
	peer := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenPeerUrls = []url.URL{peer}
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("starting etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, "", fmt.Errorf("etcd failed: %w", err)
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, "", fmt.Errorf("etcd not ready after 30s")
	}
	return e, client.String(), nil
}
