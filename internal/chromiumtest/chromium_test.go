package chromiumtest

import (
	"bytes"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func serve(t *testing.T, page string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestDumpDOM shows that the DOM is the browser's: a script's change is in
// it, which fetching the page would not show.
func TestDumpDOM(t *testing.T) {
	url := serve(t, `<!DOCTYPE html><html><body><p id="a">static &lt;b&gt;</p>
<script>document.getElementById("a").insertAdjacentHTML("afterend", "<p id=\"b\">from a script</p>")</script>
</body></html>`)
	dom := DumpDOM(t, url)
	for _, want := range []string{`<p id="a">static &lt;b&gt;</p>`, `<p id="b">from a script</p>`} {
		if !strings.Contains(dom, want) {
			t.Errorf("the DOM lacks %s:\n%s", want, dom)
		}
	}
}

func TestScreenshot(t *testing.T) {
	url := serve(t, `<!DOCTYPE html><html><body style="background: #c00"><h1>page</h1></body></html>`)
	img, err := png.Decode(bytes.NewReader(Screenshot(t, url, 640, 480)))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 640 || b.Dy() != 480 {
		t.Errorf("screenshot is %dx%d, want 640x480", b.Dx(), b.Dy())
	}
	// The page's background, away from the heading.
	r, g, b, _ := img.At(600, 440).RGBA()
	if r>>8 != 0xcc || g>>8 != 0 || b>>8 != 0 {
		t.Errorf("pixel (600, 440) is %02x%02x%02x, want the page's background cc0000", r>>8, g>>8, b>>8)
	}
}

func TestBinaryFromEnvironment(t *testing.T) {
	t.Setenv("CHROMIUM_BIN", "/nonexistent/chromium")
	if _, err := Binary(t.Context()); err == nil || !strings.Contains(err.Error(), "CHROMIUM_BIN") {
		t.Errorf("Binary with a missing CHROMIUM_BIN = %v, want an error naming it", err)
	}
}
