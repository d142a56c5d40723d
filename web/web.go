// Package web holds the embedded pages and the widget script the hub serves.
//
// It owns those files (static/ and home.html, the template of the page at
// /), the paths they are served at, and how: their content types, entity
// tags, gzip, caching, and the pages' Content-Security-Policy. The pages
// talk to the hub through the transport's sockets and HTTP API; this
// package serves nothing else.
//
// Goroutines: none. Handler reads, renders and compresses every file once,
// on its caller's goroutine; ServeHTTP runs on net/http's.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	jsclient "github.com/presencehub/presencehub/clients/js"
	"github.com/presencehub/presencehub/protocol"
)

//go:embed static
var static embed.FS

// homeHTML is the page at /; it is not under static/ because it is a
// template, rendered once per Handler.
//
//go:embed home.html
var homeHTML string

// file is one asset, read and compressed once, with the headers it is
// served with.
type file struct {
	name        string
	body        []byte
	contentType string
	etag        string
	// gz is body gzipped and gzETag its entity tag; gz is nil for types
	// that do not compress (images) and where gzip would save nothing.
	gz     []byte
	gzETag string
}

// newFile prepares an asset: its entity tags, strong and from the bytes
// each representation carries (RFC 9110 section 8.8.3.3: a gzipped
// representation needs a tag of its own), and its gzipped form.
func newFile(name string, body []byte) *file {
	ct, ok := contentTypes[path.Ext(name)]
	if !ok {
		ct = "application/octet-stream"
	}
	f := &file{name: name, body: body, contentType: ct, etag: etagOf(body)}
	if !compressible(ct) {
		return f
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err == nil {
		_, err = zw.Write(body)
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		// Writing to memory at a valid level cannot fail.
		panic("web: failed to gzip " + name + ": " + err.Error())
	}
	if buf.Len() < len(body) {
		f.gz, f.gzETag = buf.Bytes(), etagOf(buf.Bytes())
	}
	return f
}

func etagOf(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

// compressible reports whether gzip helps a content type: text does, PNG
// and the like are compressed already.
func compressible(contentType string) bool {
	return strings.HasPrefix(contentType, "text/") || strings.HasPrefix(contentType, "application/javascript") ||
		strings.HasPrefix(contentType, "image/svg+xml")
}

// contentTypes maps the extensions of the embedded files to their types; it
// is fixed here so the machine's MIME tables cannot change what is served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "application/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".ico":  "image/x-icon",
	".png":  "image/png",
	".txt":  "text/plain; charset=utf-8",
}

// pageCSP is the Content-Security-Policy of the console and admin pages:
// their scripts and styles come from /static/ only, and they talk to the hub
// they were served by.
const pageCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self' ws: wss:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Options configures Handler.
type Options struct {
	// Dev says the hub runs with --dev: the page at / then links the
	// console, the demo and the admin page, which get their tokens from
	// /dev/token. Otherwise it says what runs here and where the docs are.
	Dev bool
}

// Handler serves the widget script, the pages and their assets:
//
//	GET /            what runs here: links to the pages (dev mode) or to the docs
//	GET /widget.js   the embeddable widget (cached for 5 minutes)
//	GET /console     the agent console
//	GET /admin       the live hub statistics
//	GET /history     the availability history (timeline and coverage)
//	GET /demo        a demo shop page embedding the widget (site "demo")
//	GET /static/...  the pages' scripts and styles
//
// Every response carries a strong ETag and answers If-None-Match with 304.
// Text is served gzipped to clients that accept it; it is compressed here,
// once, not per request. It expects the request's full path (no prefix
// stripped) and answers 404 to any other path and 405 to methods other than
// GET and HEAD.
func Handler(o Options) http.Handler {
	files := map[string]*file{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "static/")
		files[name] = newFile(name, body)
		return nil
	})
	if err != nil {
		// The files are compiled in; failing to read them is a build bug.
		panic("web: failed to read embedded files: " + err.Error())
	}
	if err := addSDK(files); err != nil {
		panic("web: " + err.Error()) // a build bug, as above
	}
	var home bytes.Buffer
	if err := template.Must(template.New("home").Parse(homeHTML)).Execute(&home, o); err != nil {
		panic("web: failed to render the home page: " + err.Error()) // a build bug, as above
	}
	return handler{files: files, home: newFile(homeFile, home.Bytes())}
}

// The JavaScript SDK (clients/js, package jsclient) is the pages' and the
// widget's protocol code: its modules are served at /static/ beside the
// pages' own, and /widget.js, a classic script a customer's page loads
// from another origin, carries src/watch-widget.js inlined where its
// source has the include line.
const (
	sdkEntry    = "index.js" // re-exports the others: the npm package's entry, not served
	widgetName  = "widget.js"
	includeLine = "// @include watch-widget.js"
)

// addSDK adds the SDK's modules to files, and replaces widget.js with the
// widget as served: its source with watch-widget.js inlined.
func addSDK(files map[string]*file) error {
	names, err := fs.Glob(jsclient.Sources, "src/*.js")
	if err != nil {
		return err
	}
	for _, p := range names {
		name := path.Base(p)
		if name == sdkEntry {
			continue
		}
		if _, clash := files[name]; clash {
			return fmt.Errorf("the SDK's %s has the name of a file in static/", name)
		}
		body, err := fs.ReadFile(jsclient.Sources, p)
		if err != nil {
			return err
		}
		files[name] = newFile(name, body)
	}
	watch, ok := files["watch-widget.js"]
	if !ok {
		return fmt.Errorf("the SDK has no src/watch-widget.js")
	}
	widget, ok := files[widgetName]
	if !ok {
		return fmt.Errorf("static/ has no %s", widgetName)
	}
	body, err := inlineWatcher(widget.body, watch.body)
	if err != nil {
		return err
	}
	files[widgetName] = newFile(widgetName, body)
	return nil
}

// inlineWatcher puts the module watch (watch-widget.js) into the classic
// script widget in place of its include line. The module must import
// nothing and export one function, watchWidget, which becomes a function
// of the widget's own scope; its line comments go, as the widget is
// downloaded by every visitor of every page that embeds it.
func inlineWatcher(widget, watch []byte) ([]byte, error) {
	before, after, ok := bytes.Cut(widget, []byte(includeLine+"\n"))
	if !ok || bytes.Contains(after, []byte(includeLine)) {
		return nil, fmt.Errorf("%s must have the line %q once", widgetName, includeLine)
	}
	var out bytes.Buffer
	out.Write(before)
	exports := 0
	for _, line := range strings.SplitAfter(string(watch), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "import ") || strings.HasPrefix(trimmed, "import{"):
			return nil, fmt.Errorf("watch-widget.js must import nothing, to be inlined in %s: %s", widgetName, trimmed)
		case strings.HasPrefix(line, "export function watchWidget("):
			exports++
			line = strings.TrimPrefix(line, "export ")
		case strings.HasPrefix(trimmed, "export "):
			return nil, fmt.Errorf("watch-widget.js must export watchWidget alone, to be inlined in %s: %s", widgetName, trimmed)
		case strings.HasPrefix(trimmed, "//") || trimmed == "":
			continue
		}
		out.WriteString(line)
	}
	if exports != 1 {
		return nil, fmt.Errorf("watch-widget.js must have one line starting \"export function watchWidget(\", has %d", exports)
	}
	out.Write(after)
	return out.Bytes(), nil
}

// route is what one of the handler's fixed paths serves.
type route struct {
	file  string // an embedded file's name, or homeFile
	cache string // Cache-Control; "" means no-cache
	page  bool   // a page: Referrer-Policy and, but for the demo, the CSP
	// anyOrigin allows every origin to read it (Access-Control-Allow-Origin).
	anyOrigin bool
}

// homeFile names the page at /, rendered from homeHTML.
const homeFile = "home.html"

// routes are the paths the handler answers besides /static/{file}. Paths
// lists them, so that a test can hold them against the server's OpenAPI
// description.
var routes = map[string]route{
	"/": {file: homeFile, page: true},
	// Allowing any origin is harmless for a public script, and lets a site
	// load it with crossorigin or subresource integrity.
	"/widget.js": {file: "widget.js", cache: "public, max-age=300", anyOrigin: true},
	"/console":   {file: "console.html", page: true},
	"/admin":     {file: "admin.html", page: true},
	"/history":   {file: "history.html", page: true},
	"/demo":      {file: "demo.html", page: true},
}

// Paths returns every path Handler answers (GET and HEAD), in OpenAPI
// path syntax: the fixed paths, sorted, then /static/{file}.
func Paths() []string {
	out := make([]string, 0, len(routes)+1)
	for p := range routes {
		out = append(out, p)
	}
	slices.Sort(out)
	return append(out, "/static/{file}")
}

type handler struct {
	files map[string]*file
	home  *file
}

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var (
		f     *file
		cache = "no-cache"
		page  bool
	)
	if rt, ok := routes[r.URL.Path]; ok {
		f, page = h.files[rt.file], rt.page
		if rt.file == homeFile {
			f = h.home
		}
		if rt.cache != "" {
			cache = rt.cache
		}
		if rt.anyOrigin {
			w.Header().Set("Access-Control-Allow-Origin", "*")
		}
	} else {
		name, ok := strings.CutPrefix(r.URL.Path, "/static/")
		// Only the flat folder's own files: no listing, no dot files, no
		// sub-paths.
		if ok && name != "" && !strings.ContainsAny(name, "/\\") && !strings.HasPrefix(name, ".") {
			f = h.files[name]
		}
	}
	if f == nil {
		writeError(w, http.StatusNotFound, protocol.CodeNotFound, "no such file: "+protocol.Truncate(r.URL.Path, 200))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, protocol.CodeMethodNotAllowed, r.Method+" is not allowed; allowed: GET, HEAD")
		return
	}
	hdr := w.Header()
	body, etag := f.body, f.etag
	if f.gz != nil {
		hdr.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Values("Accept-Encoding")) {
			body, etag = f.gz, f.gzETag
			hdr.Set("Content-Encoding", "gzip")
			// ServeContent leaves Content-Length out when Content-Encoding
			// is set (for handlers that compress on the fly); the length is
			// known here. It sets its own for a range, and 304s and errors
			// drop it.
			hdr.Set("Content-Length", strconv.Itoa(len(body)))
		}
	}
	hdr.Set("Content-Type", f.contentType)
	hdr.Set("Cache-Control", cache)
	hdr.Set("ETag", etag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	if page {
		// The console and admin pages may carry a token in their URL.
		hdr.Set("Referrer-Policy", "no-referrer")
		if f.name != "demo.html" {
			// The demo page builds its widget tag in an inline script, so
			// it goes without; the others load everything from /static/.
			hdr.Set("Content-Security-Policy", pageCSP)
		}
	}
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether Accept-Encoding header values accept gzip:
// named with a q above 0, or else covered by "*" with a q above 0 (RFC 9110
// section 12.5.3). No header means identity only.
func acceptsGzip(values []string) bool {
	gz, star := -1.0, -1.0 // the q of gzip and of *; -1 when not named
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(item, ";")
			q := 1.0
			for _, param := range strings.Split(params, ";") {
				k, val, ok := strings.Cut(param, "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
					continue
				}
				if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
					q = f
				}
			}
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				gz = q
			case "*":
				star = q
			}
		}
	}
	if gz >= 0 {
		return gz > 0
	}
	return star > 0
}

// writeError answers with the API's JSON error (docs/protocol.md), as the
// transport's routes do.
func writeError(w http.ResponseWriter, status int, code, message string) {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	e.Error.Code, e.Error.Message = code, message
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(e)
}
