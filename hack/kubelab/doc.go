// Command kubelab runs a small, real Kubernetes control plane on 127.0.0.1
// for integration tests and local experiments: etcd (in this process) and
// kube-apiserver v1.37.2, and with --controller-manager also
// kube-controller-manager (garbage collector, namespace, deployment,
// replicaset and serviceaccount controllers). No scheduler or kubelet runs,
// so Pods are stored but never run.
//
// Usage:
//
//	kubelab [--dir DIR] [--controller-manager] [--feature-gates NAME=BOOL,...]
//
// Once the apiserver is ready, kubelab writes one line to stdout,
//
//	KUBECONFIG=/path/to/DIR/kubeconfig
//
// and runs until SIGINT or SIGTERM, when it stops everything it started.
// The kubeconfig holds the server address, the CA and the bearer token of a
// user in the group system:masters. Without --dir, DIR is a new temporary
// directory, removed on exit; a given --dir is created if missing and kept.
// The apiserver listens on a port the kernel picked, so several labs can run
// at once. --feature-gates is passed to kube-apiserver as its --feature-gates
// (for example ShardedListAndWatch=true, for server-side shard selectors);
// without it the apiserver runs with its default gates.
//
// # Files in DIR
//
//	kubeconfig              for clients
//	kubelab.log             the supervisor's log
//	etcd.log, apiserver.log, controller-manager.log
//	kubelab.pid             the supervisor's pid, flock-ed while it runs
//	control.sock            the control API, below
//	etcd/, etcd.sock        etcd's data and client socket
//	*.crt, *.key, tokens.csv
//
// A directory whose kubelab.pid is not locked belongs to a supervisor that
// has exited or was killed, and may be removed.
//
// # Processes
//
// The apiserver and the controller manager are this same binary run with the
// hidden subcommands "apiserver" and "controller-manager" (which take the
// usual kube-apiserver and kube-controller-manager flags). They run as child
// processes, so the apiserver can be stopped and started again while etcd,
// and the data in it, stay up. The kernel kills the children when the
// supervisor dies, even by SIGKILL. The supervisor holds the apiserver's
// address: a restarted apiserver serves on the same 127.0.0.1:port, so
// clients built from the kubeconfig reconnect by themselves. A controller
// manager that exits is started again after a second.
//
// # Control API
//
// HTTP on the unix socket DIR/control.sock (curl --unix-socket DIR/control.sock http://lab/status):
//
//	POST /apiserver/stop          stop the apiserver with SIGTERM (open watches are
//	                              ended; about a second) and return once it has exited
//	POST /apiserver/stop?kill=1   the same with SIGKILL: a crash; connections are
//	                              cut at once
//	POST /apiserver/start         start it again on the same address and return once
//	                              /readyz answers 200 (about 2 s); 500 with the reason
//	                              if it cannot start. A no-op wait when it is running.
//	GET  /status                  JSON: pid, dir, kubeconfig, server, and for
//	                              "apiserver" and "controllerManager" running and pid
//
// While the apiserver is stopped, connections to its address are refused.
package main
