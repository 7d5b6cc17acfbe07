package supervisor

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Config is what the command line asks of the supervisor.
type Config struct {
	Dir               string // "" means a temporary directory, removed on exit
	ControllerManager bool
	FeatureGates      string // kube-apiserver's --feature-gates, "" for its defaults
}

// ParseFlags parses the supervisor's command line. Usage goes to out; -h
// returns flag.ErrHelp.
func ParseFlags(args []string, out io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("kubelab", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.Dir, "dir", "", "directory for the kubeconfig, logs, sockets and etcd data (created if missing, kept on exit); default: a temporary directory removed on exit")
	fs.BoolVar(&c.ControllerManager, "controller-manager", false, "also run kube-controller-manager (garbage collector, namespace, deployment, replicaset and serviceaccount controllers)")
	fs.StringVar(&c.FeatureGates, "feature-gates", "", "feature gates of kube-apiserver, as its --feature-gates takes them: comma-separated Name=true|false pairs, e.g. ShardedListAndWatch=true; default: none set, the apiserver's defaults")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: kubelab [--dir DIR] [--controller-manager] [--feature-gates NAME=BOOL,...]\n\n"+
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
	if err := checkFeatureGates(c.FeatureGates); err != nil {
		return Config{}, err
	}
	return c, nil
}

// checkFeatureGates checks the form of --feature-gates, so that a typo is
// an error here rather than an apiserver that fails to start. Whether the
// apiserver knows each gate, it says itself.
func checkFeatureGates(gates string) error {
	if gates == "" {
		return nil
	}
	for _, pair := range strings.Split(gates, ",") {
		name, value, ok := strings.Cut(pair, "=")
		if _, err := strconv.ParseBool(value); !ok || strings.TrimSpace(name) == "" || err != nil {
			return fmt.Errorf("--feature-gates %q: %q is not Name=true or Name=false", gates, pair)
		}
	}
	return nil
}
