package web_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/presencehub/presencehub/web"
)

const (
	jsType   = "application/javascript; charset=utf-8"
	htmlType = "text/html; charset=utf-8"
	cssType  = "text/css; charset=utf-8"
)

func get(t *testing.T, srv *httptest.Server, method, path string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return res, body
}

func TestServesPagesAndAssets(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/widget.js", jsType, "PresenceWidget"},
		{"/console", htmlType, `id="roster"`},
		{"/admin", htmlType, `id="replicas"`},
		{"/demo", htmlType, `id="demo-status"`},
		{"/static/console.js", jsType, "subscribe_roster"},
		{"/static/admin.js", jsType, "stats"},
		{"/static/common.js", jsType, "Backoff"},
		{"/static/console.css", cssType, ".avatar"},
		{"/static/admin.css", cssType, ".chart"},
		{"/static/base.css", cssType, "system-ui"},
	} {
		res, body := get(t, srv, http.MethodGet, tc.path)
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", tc.path, res.StatusCode)
			continue
		}
		if got := res.Header.Get("Content-Type"); got != tc.contentType {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, got, tc.contentType)
		}
		if !bytes.Contains(body, []byte(tc.contains)) {
			t.Errorf("GET %s: body does not contain %q", tc.path, tc.contains)
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", tc.path, got)
		}
	}
}

func TestWidgetHeaders(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	res, _ := get(t, srv, http.MethodGet, "/widget.js")
	if got := res.Header.Get("Cache-Control"); got != "public, max-age=300" {
		t.Errorf("Cache-Control %q, want %q", got, "public, max-age=300")
	}
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/widget.js", nil)
	req.Header.Set("If-None-Match", etag)
	res2, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
	if res2.StatusCode != http.StatusNotModified {
		t.Errorf("GET with If-None-Match: status %d, want 304", res2.StatusCode)
	}
}

func TestHead(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	res, body := get(t, srv, http.MethodHead, "/console")
	if res.StatusCode != http.StatusOK || len(body) != 0 {
		t.Errorf("HEAD /console: status %d with %d body bytes, want 200 and none", res.StatusCode, len(body))
	}
	if got := res.Header.Get("Content-Type"); got != htmlType {
		t.Errorf("HEAD /console: Content-Type %q", got)
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	for _, path := range []string{
		"/", "/widget", "/console.html", "/console/", "/admin/x", "/static/", "/static/nope.js",
		"/static/../web.go", "/static/%2e%2e/web.go", "/static/sub/widget.js", "/v1/agent", "/favicon.ico",
	} {
		res, _ := get(t, srv, http.MethodGet, path)
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, res.StatusCode)
		}
	}
	res, _ := get(t, srv, http.MethodPost, "/widget.js")
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /widget.js: status %d, want 405", res.StatusCode)
	}
}

// TestPageReferencesResolve checks that every /static/ file a page or script
// names is served.
func TestPageReferencesResolve(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	ref := regexp.MustCompile(`(?:"|')(/static/[^"'?#]+|\./[a-z]+\.js)(?:"|')`)
	found := 0
	for _, page := range []string{"/console", "/admin", "/demo", "/static/console.js", "/static/admin.js"} {
		_, body := get(t, srv, http.MethodGet, page)
		for _, m := range ref.FindAllSubmatch(body, -1) {
			path := string(m[1])
			if rel, ok := strings.CutPrefix(path, "./"); ok {
				path = "/static/" + rel
			}
			if res, _ := get(t, srv, http.MethodGet, path); res.StatusCode != http.StatusOK {
				t.Errorf("%s names %s, which answers %d", page, path, res.StatusCode)
			}
			found++
		}
	}
	if found < 8 {
		t.Errorf("found %d references to /static/ files, want at least 8", found)
	}
}

func TestWidgetIsSmall(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	_, body := get(t, srv, http.MethodGet, "/widget.js")
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(body)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("widget.js: %d bytes, %d bytes gzipped", len(body), buf.Len())
	if buf.Len() >= 6<<10 {
		t.Errorf("widget.js is %d bytes gzipped, want under 6 KiB", buf.Len())
	}
}
