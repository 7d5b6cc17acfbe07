package supervisor

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// serveControl serves the control API (see the package doc) on the unix
// socket path. Close the returned server to stop it.
func (s *supervisor) serveControl(path string) (*http.Server, error) {
	_ = os.Remove(path) // left over from a killed supervisor using the same --dir
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: s.controlHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}

func (s *supervisor) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /apiserver/stop", func(w http.ResponseWriter, r *http.Request) {
		kill, err := parseBool(r.URL.Query().Get("kill"))
		if err != nil {
			http.Error(w, "kill: "+err.Error(), http.StatusBadRequest)
			return
		}
		start := time.Now()
		s.stopAPIServer(kill)
		fmt.Fprintf(w, "stopped after %v\n", time.Since(start).Round(time.Millisecond))
	})
	mux.HandleFunc("POST /apiserver/start", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if err := s.startAPIServer(r.Context(), nil); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "ready after %v\n", time.Since(start).Round(time.Millisecond))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.status())
	})
	return mux
}
