package web_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	jsclient "github.com/presencehub/presencehub/clients/js"
	"github.com/presencehub/presencehub/web"
)

const (
	jsType   = "application/javascript; charset=utf-8"
	htmlType = "text/html; charset=utf-8"
	cssType  = "text/css; charset=utf-8"
)

// get sends a request over the test server's client, which asks for gzip
// and decompresses as browsers do.
func get(t *testing.T, srv *httptest.Server, method, path string) (*http.Response, []byte) {
	t.Helper()
	return do(t, srv.Client(), method, srv.URL+path)
}

// fetch sends a request with the given headers over a client that leaves
// Accept-Encoding and the body as they are (Go's client otherwise asks for
// gzip itself and decompresses behind the caller's back).
func fetch(t *testing.T, srv *httptest.Server, method, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer client.CloseIdleConnections()
	return do(t, client, method, srv.URL+path, header...)
}

// do sends a request with headers (name, value, ...) and reads the answer.
func do(t *testing.T, client *http.Client, method, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return res, body
}

func TestServesPagesAndAssets(t *testing.T) {
	srv := httptest.NewServer(web.Handler(web.Options{}))
	defer srv.Close()
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/widget.js", jsType, "PresenceWidget"},
		{"/console", htmlType, `id="roster"`},
		{"/admin", htmlType, `id="replicas"`},
		{"/demo", htmlType, `id="demo-status"`},
		{"/static/console.js", jsType, "subscribeRoster"},
		{"/static/agent-client.js", jsType, "subscribe_roster"},
		{"/static/watch-widget.js", jsType, "export function watchWidget("},
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
	srv := httptest.NewServer(web.Handler(web.Options{}))
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
	srv := httptest.NewServer(web.Handler(web.Options{}))
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
	srv := httptest.NewServer(web.Handler(web.Options{}))
	defer srv.Close()
	for _, path := range []string{
		"/index.html", "/home.html", "/widget", "/console.html", "/console/", "/admin/x", "/static/", "/static/nope.js",
		"/static/../web.go", "/static/%2e%2e/web.go", "/static/sub/widget.js", "/v1/agent", "/favicon.ico",
	} {
		res, body := get(t, srv, http.MethodGet, path)
		if res.StatusCode != http.StatusNotFound || res.Header.Get("Content-Type") != "application/json" ||
			!strings.HasPrefix(string(body), `{"error":{"code":"not_found","message":"no such file: `) {
			t.Errorf("GET %s: status %d %s, want 404 with a JSON error", path, res.StatusCode, body)
		}
	}
	res, body := get(t, srv, http.MethodPost, "/widget.js")
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" ||
		!strings.HasPrefix(string(body), `{"error":{"code":"method_not_allowed",`) {
		t.Errorf("POST /widget.js: status %d (Allow %q) %s, want 405 with Allow and a JSON error", res.StatusCode, res.Header.Get("Allow"), body)
	}
}

// TestPageReferencesResolve checks that every /static/ file a page or script
// names is served.
func TestPageReferencesResolve(t *testing.T) {
	srv := httptest.NewServer(web.Handler(web.Options{}))
	defer srv.Close()
	ref := regexp.MustCompile(`(?:"|')(/static/[^"'?#]+|\./[a-z-]+\.js)(?:"|')`)
	found := 0
	// Every page, then every script reached from one (modules import
	// modules), once each.
	queue := []string{"/console", "/admin", "/demo", "/history"}
	seen := map[string]bool{}
	for len(queue) > 0 {
		page := queue[0]
		queue = queue[1:]
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
			if strings.HasSuffix(path, ".js") && !seen[path] {
				seen[path] = true
				queue = append(queue, path)
			}
		}
	}
	for _, module := range []string{"/static/keepers.js", "/static/cells.js", "/static/timeline.js", "/static/coverage.js", "/static/agent-client.js"} {
		if !seen[module] {
			t.Errorf("no page or script reached %s", module)
		}
	}
	if found < 8 {
		t.Errorf("found %d references to /static/ files, want at least 8", found)
	}
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("got a body that is not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("got a gzip body that does not decompress: %v", err)
	}
	return out
}

// TestWidgetServedCompressed: /widget.js goes out gzipped to clients that
// accept gzip, as is to the others, each representation with its own strong
// ETag answered with 304, and a cache header either way.
func TestWidgetServedCompressed(t *testing.T) {
	srv := httptest.NewServer(web.Handler(web.Options{}))
	defer srv.Close()

	plain, plainBody := fetch(t, srv, http.MethodGet, "/widget.js")
	if got := plain.Header.Get("Content-Encoding"); got != "" {
		t.Fatalf("got Content-Encoding %q without Accept-Encoding, want none", got)
	}
	zipped, zippedBody := fetch(t, srv, http.MethodGet, "/widget.js", "Accept-Encoding", "gzip, deflate, br, zstd")
	if got := zipped.Header.Get("Content-Encoding"); got != "gzip" {
		t.Fatalf("got Content-Encoding %q for Accept-Encoding gzip, want gzip", got)
	}
	if !bytes.Equal(gunzip(t, zippedBody), plainBody) {
		t.Fatal("got a gzipped widget.js that does not decompress to the plain one")
	}
	t.Logf("widget.js: %d bytes, %d bytes as served gzipped", len(plainBody), len(zippedBody))
	if got, want := zipped.Header.Get("Content-Length"), strconv.Itoa(len(zippedBody)); got != want {
		t.Errorf("got Content-Length %q, want %s (the gzipped length)", got, want)
	}
	for _, res := range []*http.Response{plain, zipped} {
		if got := res.Header.Get("Cache-Control"); got != "public, max-age=300" {
			t.Errorf("got Cache-Control %q, want %q", got, "public, max-age=300")
		}
		if got := res.Header.Get("Vary"); got != "Accept-Encoding" {
			t.Errorf("got Vary %q, want Accept-Encoding (caches must keep the two apart)", got)
		}
		if etag := res.Header.Get("ETag"); !regexp.MustCompile(`^"[0-9a-f]{24}"$`).MatchString(etag) {
			t.Errorf("got ETag %q, want a strong tag of 24 hex digits", etag)
		}
	}
	plainTag, zippedTag := plain.Header.Get("ETag"), zipped.Header.Get("ETag")
	if plainTag == zippedTag {
		t.Errorf("got ETag %s for both representations, want one each", plainTag)
	}

	for _, tc := range []struct {
		name, acceptEncoding, ifNoneMatch string
		want                              int
	}{
		{"plain, its tag", "", plainTag, http.StatusNotModified},
		{"gzip, its tag", "gzip", zippedTag, http.StatusNotModified},
		{"gzip, several tags", "gzip", `"0123", ` + zippedTag, http.StatusNotModified},
		{"gzip, the plain tag", "gzip", plainTag, http.StatusOK},
		{"plain, the gzip tag", "", zippedTag, http.StatusOK},
	} {
		res, body := fetch(t, srv, http.MethodGet, "/widget.js", "Accept-Encoding", tc.acceptEncoding, "If-None-Match", tc.ifNoneMatch)
		if res.StatusCode != tc.want {
			t.Errorf("%s: got status %d, want %d", tc.name, res.StatusCode, tc.want)
		}
		if res.StatusCode == http.StatusNotModified && len(body) != 0 {
			t.Errorf("%s: got %d body bytes with 304, want none", tc.name, len(body))
		}
	}

	for _, tc := range []struct {
		acceptEncoding string
		gzip           bool
	}{
		{"gzip;q=0", false},
		{"gzip; q=0.0, deflate", false},
		{"br, zstd", false},
		{"identity", false},
		{"*", true},
		{"*;q=0.5, gzip;q=0", false},
		{"GZIP;Q=0.3", true},
		{"x-gzip", true},
	} {
		res, body := fetch(t, srv, http.MethodGet, "/widget.js", "Accept-Encoding", tc.acceptEncoding)
		if got := res.Header.Get("Content-Encoding") == "gzip"; got != tc.gzip {
			t.Errorf("Accept-Encoding %q: got gzip %v, want %v", tc.acceptEncoding, got, tc.gzip)
		}
		if !tc.gzip && !bytes.Equal(body, plainBody) {
			t.Errorf("Accept-Encoding %q: got a body that is not the plain script", tc.acceptEncoding)
		}
	}

	head, headBody := fetch(t, srv, http.MethodHead, "/widget.js", "Accept-Encoding", "gzip")
	if head.StatusCode != http.StatusOK || len(headBody) != 0 || head.Header.Get("Content-Encoding") != "gzip" ||
		head.Header.Get("Content-Length") != strconv.Itoa(len(zippedBody)) {
		t.Errorf("HEAD with gzip: got status %d, %d body bytes, Content-Encoding %q, Content-Length %q; want 200, none, gzip, %d",
			head.StatusCode, len(headBody), head.Header.Get("Content-Encoding"), head.Header.Get("Content-Length"), len(zippedBody))
	}
}

// TestPagesServedCompressed: the pages and their scripts and styles are
// gzipped too.
func TestPagesServedCompressed(t *testing.T) {
	srv := httptest.NewServer(web.Handler(web.Options{Dev: true}))
	defer srv.Close()
	for _, path := range []string{"/", "/console", "/admin", "/demo", "/static/console.js", "/static/base.css"} {
		res, body := fetch(t, srv, http.MethodGet, path, "Accept-Encoding", "gzip")
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("GET %s: got status %d, Content-Encoding %q; want 200 and gzip", path, res.StatusCode, res.Header.Get("Content-Encoding"))
			continue
		}
		_, plain := fetch(t, srv, http.MethodGet, path)
		if !bytes.Equal(gunzip(t, body), plain) {
			t.Errorf("GET %s: got a gzipped body that does not decompress to the plain one", path)
		}
	}
}

// TestHomePage: / links the pages in dev mode, and otherwise says what runs
// and where the docs are, without pointing at /dev/token pages.
func TestHomePage(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dev     bool
		want    []string
		wantNot []string
	}{
		{"dev", true,
			[]string{`href="/console?dev"`, `href="/demo"`, `href="/admin"`, "docs/operations.md"},
			[]string{"/console?token"}},
		{"production", false,
			[]string{"presencehub token", "/console?token=", "/admin?token=", "docs/operations.md", "docs/protocol.md", `href="/widget.js"`},
			[]string{"?dev", `href="/admin"`, `href="/console`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(web.Handler(web.Options{Dev: tc.dev}))
			defer srv.Close()
			res, body := get(t, srv, http.MethodGet, "/")
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET /: status %d, want 200", res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != htmlType {
				t.Errorf("GET /: Content-Type %q, want %q", got, htmlType)
			}
			if res.Header.Get("Content-Security-Policy") == "" {
				t.Error("GET /: no Content-Security-Policy")
			}
			for _, s := range tc.want {
				if !bytes.Contains(body, []byte(s)) {
					t.Errorf("GET /: body does not contain %q", s)
				}
			}
			for _, s := range tc.wantNot {
				if bytes.Contains(body, []byte(s)) {
					t.Errorf("GET /: body contains %q, want it only in the other mode", s)
				}
			}
		})
	}
}

// TestWidgetIsSmall: every visitor of every page that embeds the widget
// downloads it. The README says how big it is (9.4 KB, 3.8 KB gzipped);
// past 4 KiB gzipped, the README's figure is wrong.
func TestWidgetIsSmall(t *testing.T) {
	srv := httptest.NewServer(web.Handler(web.Options{}))
	defer srv.Close()
	_, body := fetch(t, srv, http.MethodGet, "/widget.js", "Accept-Encoding", "gzip")
	_, plain := fetch(t, srv, http.MethodGet, "/widget.js")
	t.Logf("widget.js: %d bytes, %d bytes as served gzipped", len(plain), len(body))
	if len(body) >= 4<<10 {
		t.Errorf("widget.js is %d bytes gzipped, want under 4 KiB (or the README's figure updated, and this test)", len(body))
	}
}

// TestPagesUseTheSDK: the SDK's modules (clients/js/src) are served as
// they are, the console imports the agent client, and /widget.js carries
// watchWidget inlined, as a function of its own scope.
func TestPagesUseTheSDK(t *testing.T) {
	srv := httptest.NewServer(web.Handler(web.Options{}))
	defer srv.Close()
	for _, name := range []string{"agent-client.js", "watch-widget.js"} {
		want, err := fs.ReadFile(jsclient.Sources, "src/"+name)
		if err != nil {
			t.Fatal(err)
		}
		if res, body := get(t, srv, http.MethodGet, "/static/"+name); res.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
			t.Errorf("GET /static/%s: status %d, %d bytes, want 200 and clients/js/src/%s as it is", name, res.StatusCode, len(body), name)
		}
	}
	if res, _ := get(t, srv, http.MethodGet, "/static/index.js"); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /static/index.js: status %d, want 404 (the npm entry is not a page's module)", res.StatusCode)
	}
	_, console := get(t, srv, http.MethodGet, "/static/console.js")
	if !bytes.Contains(console, []byte(`from './agent-client.js'`)) {
		t.Error("console.js does not import ./agent-client.js")
	}
	_, widget := get(t, srv, http.MethodGet, "/widget.js")
	for _, want := range []string{"\nfunction watchWidget(options, onStatus) {", "watchWidget({", "})();\n"} {
		if !bytes.Contains(widget, []byte(want)) {
			t.Errorf("/widget.js does not contain %q", want)
		}
	}
	for _, unwanted := range []string{"export ", "import ", "@include"} {
		if bytes.Contains(widget, []byte(unwanted)) {
			t.Errorf("/widget.js contains %q: a classic script must not", unwanted)
		}
	}
	if _, static := get(t, srv, http.MethodGet, "/static/widget.js"); !bytes.Equal(static, widget) {
		t.Error("/static/widget.js differs from /widget.js, want the same script")
	}
}

// TestPathsAreServed: every path Paths lists (which the OpenAPI description
// is held against) answers, and /static/{file} serves a file.
func TestPathsAreServed(t *testing.T) {
	srv := httptest.NewServer(web.Handler(web.Options{}))
	defer srv.Close()
	for _, p := range web.Paths() {
		p = strings.Replace(p, "{file}", "base.css", 1)
		if resp, _ := get(t, srv, "GET", p); resp.StatusCode != http.StatusOK {
			t.Errorf("got %d from GET %s, a path web.Paths lists, want 200", resp.StatusCode, p)
		}
	}
}
