package kubelabtest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"go.uber.org/goleak"
	"k8s.io/klog/v2"
)

var defaultLab atomic.Pointer[Lab]

// Default returns the lab that Main started. It panics when called outside
// a test package whose TestMain calls Main.
func Default() *Lab {
	l := defaultLab.Load()
	if l == nil {
		panic("kubelabtest.Default: no lab; call kubelabtest.Main from TestMain")
	}
	return l
}

// Main is for TestMain. It starts a lab with opts (see Default), calls
// opts.Setup, runs the tests, stops the lab, checks that no goroutines
// leaked (go.uber.org/goleak) and exits with the tests' exit code, or 1 if
// the lab, Setup or the leak check failed. If the lab cannot start, Main
// prints why (with the tail of its logs) and exits 1: tests never silently
// skip. When the tests fail, it keeps the lab's logs (etcd, apiserver,
// controller manager) in a directory os.TempDir()/kubelab-logs-* and
// prints its path. On SIGINT or SIGTERM it stops the lab and exits 1.
func Main(m *testing.M, opts Options) {
	os.Exit(run(m, opts))
}

func run(m *testing.M, opts Options) int {
	// m.Run would parse them; Setup may look at them first.
	if !flag.Parsed() {
		flag.Parse()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Stop the lab when interrupted, then exit.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	started := make(chan struct{}) // closed once Start has returned
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case sig := <-signals:
			fmt.Fprintf(os.Stderr, "kubelabtest: %v: stopping the lab\n", sig)
			cancel() // a Start in progress cleans up and returns
			<-started
			if l := defaultLab.Load(); l != nil {
				_ = l.Stop()
			}
			os.Exit(1)
		case <-done:
		}
	}()
	stopSignals := func() {
		signal.Stop(signals)
		close(done)
		wg.Wait()
	}

	lab, err := Start(ctx, opts)
	if lab != nil {
		defaultLab.Store(lab)
	}
	close(started)
	if err != nil {
		stopSignals()
		fmt.Fprintf(os.Stderr, "kubelabtest: cannot start the lab: %v\n", err)
		return 1
	}

	code := 0
	if opts.Setup != nil {
		if err := opts.Setup(ctx, lab); err != nil {
			fmt.Fprintf(os.Stderr, "kubelabtest: Setup: %v\n", err)
			code = 1
		}
	}
	if code == 0 {
		code = m.Run()
	}

	stopSignals()
	logs := ""
	if code != 0 {
		if logs, err = os.MkdirTemp("", "kubelab-logs-"); err != nil {
			fmt.Fprintf(os.Stderr, "kubelabtest: %v\n", err)
			logs = ""
		}
	}
	if err := lab.stop(logs); err != nil {
		fmt.Fprintf(os.Stderr, "kubelabtest: stopping the lab: %v\n", err)
		code = max(code, 1)
	}
	if logs != "" {
		fmt.Fprintf(os.Stderr, "kubelabtest: the tests failed; the lab's logs are in %s\n", logs)
	}
	// klog starts its flush daemon in init; it is not the tests' leak.
	klog.StopFlushDaemon()
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "kubelabtest: leaked goroutines: %v\n", err)
		code = max(code, 1)
	}
	return code
}
