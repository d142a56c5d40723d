package transport

import (
	_ "embed"
	"net/http"
	"slices"
)

// openAPI is the OpenAPI 3.1 description of every route the server
// registers, its own and those other packages add through Handle. It is
// kept by hand next to the handlers; tests fail when a registered route is
// missing from it and when an answer does not match it.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 description of the HTTP API, as served at
// GET /openapi.json.
func OpenAPI() []byte { return slices.Clone(openAPI) }

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}

// handleFunc registers h on the server's mux and remembers the pattern, so
// that Routes can list it.
func (s *Server) handleFunc(pattern string, h http.HandlerFunc) { s.handle(pattern, h) }

func (s *Server) handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.patterns = append(s.patterns, pattern)
}

// Routes returns the patterns registered on the server, its own and those
// added with Handle, in the order they were registered. A test compares
// them with the OpenAPI description.
func (s *Server) Routes() []string { return slices.Clone(s.patterns) }
