package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/kubehandler/kubehandler/hack/kubelab/internal/supervisor"
)

func main() {
	if len(os.Args) > 1 {
		// Hidden subcommands: the supervisor runs this binary again as its
		// child processes.
		var run func([]string) error
		switch os.Args[1] {
		case supervisor.APIServerCommand:
			run = runAPIServer
		case supervisor.ControllerManagerCommand:
			run = runControllerManager
		}
		if run != nil {
			if err := run(os.Args[2:]); err != nil {
				fmt.Fprintf(os.Stderr, "kubelab %s: %v\n", os.Args[1], err)
				os.Exit(1)
			}
			os.Exit(0)
		}
	}

	c, err := supervisor.ParseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubelab:", err)
		os.Exit(2)
	}
	if err := supervisor.Run(c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kubelab:", err)
		os.Exit(1)
	}
}
