// Package web holds the embedded pages and the widget script the hub serves.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// file is one embedded asset, read once, with the headers it is served with.
type file struct {
	name        string
	body        []byte
	contentType string
	etag        string
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

// Handler serves the widget script, the pages and their assets:
//
//	GET /widget.js   the embeddable widget (cached for 5 minutes)
//	GET /console     the agent console
//	GET /admin       the live hub statistics
//	GET /demo        a demo shop page embedding the widget (site "demo")
//	GET /static/...  the pages' scripts and styles
//
// It expects the request's full path (no prefix stripped) and answers 404 to
// any other path and 405 to methods other than GET and HEAD.
func Handler() http.Handler {
	files := map[string]*file{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		name := strings.TrimPrefix(p, "static/")
		files[name] = &file{name: name, body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		// The files are compiled in; failing to read them is a build bug.
		panic("web: failed to read embedded files: " + err.Error())
	}
	return handler{files: files}
}

type handler struct{ files map[string]*file }

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var (
		f     *file
		cache = "no-cache"
		page  bool
	)
	switch p := r.URL.Path; p {
	case "/widget.js":
		f, cache = h.files["widget.js"], "public, max-age=300"
		// Harmless for a public script, and lets a site load it with
		// crossorigin or subresource integrity.
		w.Header().Set("Access-Control-Allow-Origin", "*")
	case "/console", "/admin", "/demo":
		f, page = h.files[p[1:]+".html"], true
	default:
		name, ok := strings.CutPrefix(p, "/static/")
		// Only the flat folder's own files: no listing, no dot files, no
		// sub-paths.
		if ok && name != "" && !strings.ContainsAny(name, "/\\") && !strings.HasPrefix(name, ".") {
			f = h.files[name]
		}
	}
	if f == nil {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", f.contentType)
	hdr.Set("Cache-Control", cache)
	hdr.Set("ETag", f.etag)
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
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
}
