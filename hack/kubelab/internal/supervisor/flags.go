package supervisor

import (
	"flag"
	"fmt"
	"io"
)

// Config is what the command line asks of the supervisor.
type Config struct {
	Dir               string // "" means a temporary directory, removed on exit
	ControllerManager bool
}

// ParseFlags parses the supervisor's command line. Usage goes to out; -h
// returns flag.ErrHelp.
func ParseFlags(args []string, out io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("kubelab", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.Dir, "dir", "", "directory for the kubeconfig, logs, sockets and etcd data (created if missing, kept on exit); default: a temporary directory removed on exit")
	fs.BoolVar(&c.ControllerManager, "controller-manager", false, "also run kube-controller-manager (garbage collector, namespace, deployment, replicaset and serviceaccount controllers)")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: kubelab [--dir DIR] [--controller-manager]\n\n"+
			"Runs etcd and kube-apiserver on 127.0.0.1 until SIGINT or SIGTERM.\n"+
			"The first line on stdout is KUBECONFIG=<path>.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return Config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return c, nil
}
