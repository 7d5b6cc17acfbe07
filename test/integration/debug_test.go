package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/internal/chromiumtest"
	"github.com/kubehandler/kubehandler/kubehandlertest"
	"github.com/kubehandler/kubehandler/kubelabtest"
)

// TestDebugPageInChromium serves the debug endpoint of a loop over a real
// API server, with a ConfigMap whose handler fails and one whose call is
// stuck, and renders the page in headless Chromium: the browser's DOM shows
// the failing key with its error text, escaped, and the stuck call. A
// screenshot is kept in the test's artifact directory (go test -artifacts).
func TestDebugPageInChromium(t *testing.T) {
	lab := kubelabtest.Default()
	client := lab.Client()
	ns := lab.Namespace(t)
	ctx := t.Context()

	release := make(chan struct{})
	defer close(release)
	h := kubehandlertest.NewRecorder(nil, configMapInformer(t, client, ns), "configmaps")
	h.Fn = func(ctx context.Context, ev kubehandler.Event) error {
		switch ev.Key.Name {
		case "broken":
			return fmt.Errorf(`spec.replicas <"abc"> is not a number`)
		case "stuck":
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}
	loop := kubehandler.NewEventLoop("debug-page",
		kubehandler.WithRateLimiter(workqueue.NewTypedItemExponentialFailureRateLimiter[kubehandler.Key](time.Hour, time.Hour)))
	loop.Register(h)
	mux := http.NewServeMux()
	mux.Handle("/debug/kubehandler", kubehandler.DebugHandler(loop))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	kubehandlertest.Start(t, loop, 2)

	for _, name := range []string{"fine", "broken", "stuck"} {
		if _, err := client.CoreV1().ConfigMaps(ns).Create(ctx, configMap(ns, name, 1), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	url := srv.URL + "/debug/kubehandler"
	eventually(t, 30*time.Second, func() (bool, string) {
		resp, err := http.Get(url + "?format=json")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var rep kubehandler.DebugReport
		if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
			return false, err.Error()
		}
		for _, s := range rep.Handlers {
			if s.Name == "configmaps" && len(s.Backoff) == 1 && len(s.InFlight) == 1 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("report: %+v", rep)
	})

	dom := chromiumtest.DumpDOM(t, url)
	for _, want := range []string{
		"<h2>Handler configmaps</h2>",
		fmt.Sprintf(`<td class="key">%s/broken</td><td>add</td><td>1</td>`, ns),
		`<td class="error">spec.replicas &lt;"abc"&gt; is not a number</td>`,
		fmt.Sprintf(`<td class="key">%s/stuck</td><td>add</td><td>0</td>`, ns),
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page in Chromium lacks %s:\n%s", want, dom)
		}
	}
	if strings.Contains(dom, "<script") {
		t.Errorf("the page has a script:\n%s", dom)
	}

	shot := chromiumtest.Screenshot(t, url, 1200, 800)
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "debug-page.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	dark := 0
	for y := 0; y < img.Bounds().Dy(); y += 2 {
		for x := 0; x < img.Bounds().Dx(); x += 2 {
			if r, g, b, _ := img.At(x, y).RGBA(); r+g+b < 3*0x4000 {
				dark++
			}
		}
	}
	if dark < 200 {
		t.Errorf("the screenshot has %d dark pixels of every fourth: is any text drawn?", dark)
	}
}
