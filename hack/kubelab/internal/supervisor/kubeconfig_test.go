package supervisor

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// TestKubeconfig checks that a client built from the written kubeconfig
// trusts the serving certificate for 127.0.0.1 and sends the token that the
// token file maps to system:masters.
func TestKubeconfig(t *testing.T) {
	dir := t.TempDir()
	p, err := newPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(path, "https://127.0.0.1:6443", p.caPEM, p.token); err != nil {
		t.Fatal(err)
	}

	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:6443" {
		t.Errorf("Host = %q", cfg.Host)
	}
	if cfg.BearerToken != p.token || p.token == "" {
		t.Errorf("BearerToken = %q, want %q", cfg.BearerToken, p.token)
	}

	tokens, err := os.ReadFile(p.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := p.token + ",kubelab-admin,kubelab-admin,\"system:masters\"\n"; string(tokens) != want {
		t.Errorf("token file = %q, want %q", tokens, want)
	}

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(cfg.CAData) {
		t.Fatal("no CA certificate in the kubeconfig")
	}
	pair, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: roots}); err != nil {
			t.Errorf("serving certificate for %s: %v", host, err)
		}
	}

	saKey, err := os.ReadFile(p.saKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(saKey), "-----BEGIN EC PRIVATE KEY-----") {
		t.Errorf("service-account key is not a SEC1 EC key: %.40q", saKey)
	}
}
