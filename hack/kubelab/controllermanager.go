package main

import (
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

// runControllerManager is the hidden "controller-manager" subcommand:
// kube-controller-manager with its usual flags.
func runControllerManager(args []string) error {
	cmd := app.NewControllerManagerCommand()
	cmd.SetArgs(args)
	return cmd.Execute()
}
