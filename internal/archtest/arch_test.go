package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// layers ranks the module's top-level directories. A package may depend,
// directly or through others, only on packages of a lower rank and on
// packages under its own top-level directory. Packages under internal/ have
// no rank: anyone may import them, and what they import counts against
// whoever imports them (dependencies are followed transitively), so web
// importing internal/wstest, which imports transport, is refused.
var layers = map[string]int{
	"presence":  0, // the rules, pure Go
	"protocol":  1, // the wire protocol: messages, codes, the time format
	"clients":   1, // the SDKs' sources for other languages (clients/js), embedded for web
	"hub":       2, // the view, leases, fan-out over NATS
	"transport": 3, // WebSocket and HTTP
	"web":       3, // the embedded pages: served by cmd, beside transport
	"client":    3, // the Go SDK: speaks the wire protocol from outside, beside transport
	"cmd":       4, // flags and wiring
}

// pureLayer is the rank whose packages must stay pure Go: only the
// standard library without package net, and the module's own packages.
const pureLayer = 0

// listedPackage is what the test reads of `go list -deps -json`.
type listedPackage struct {
	ImportPath string
	Standard   bool
	// Imports are the direct imports, Deps every package imported directly
	// or not; neither includes test files.
	Imports []string
	Deps    []string
}

func TestImportDirection(t *testing.T) {
	module, pkgs := goList(t)
	if len(pkgs) == 0 {
		t.Fatal("go list listed no packages")
	}
	for _, v := range violations(module, pkgs) {
		t.Error(v)
	}
}

// goList runs `go list -deps -json ./...` at the module's root and returns
// the module path and every package listed, the standard library's
// included, by import path.
func goList(t *testing.T) (string, map[string]listedPackage) {
	t.Helper()
	var mod struct{ Path, Dir string }
	if err := json.Unmarshal(run(t, "", "go", "list", "-m", "-json"), &mod); err != nil {
		t.Fatalf("failed to decode go list -m -json: %v", err)
	}
	out := run(t, mod.Dir, "go", "list", "-deps", "-json", "./...")
	pkgs := make(map[string]listedPackage)
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("failed to decode go list -deps -json: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	return mod.Path, pkgs
}

func run(t *testing.T, dir, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("failed to run %s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// violations returns one line per dependency of a module package that goes
// against layers, or that takes a pure package off pure Go.
func violations(module string, pkgs map[string]listedPackage) []string {
	var out []string
	for _, p := range sortedPackages(pkgs) {
		rel, ok := relPath(module, p.ImportPath)
		if !ok {
			continue
		}
		top := topDir(rel)
		if top == "internal" {
			continue
		}
		rank, ok := layers[top]
		if !ok {
			out = append(out, fmt.Sprintf("%s: %s/ has no rank in layers (arch_test.go): give it one", rel, top))
			continue
		}
		for _, dep := range p.Deps {
			why := refused(module, rank, top, dep, pkgs[dep])
			if why == "" {
				continue
			}
			// Only the first refused package on the way is reported: the
			// ones behind it go away with it.
			chain := importChain(pkgs, p.ImportPath, dep)
			if slices.ContainsFunc(chain[1:len(chain)-1], func(via string) bool {
				return refused(module, rank, top, via, pkgs[via]) != ""
			}) {
				continue
			}
			out = append(out, fmt.Sprintf("%s imports %s (%s): %s", rel, dep, strings.Join(chain, " -> "), why))
		}
	}
	return out
}

// refused says why a package of rank under the top-level directory top may
// not depend on dep, or returns "".
func refused(module string, rank int, top, dep string, info listedPackage) string {
	rel, inModule := relPath(module, dep)
	switch {
	case inModule:
		depTop := topDir(rel)
		depRank, ranked := layers[depTop]
		if depTop == "internal" || depTop == top || !ranked || depRank < rank {
			return ""
		}
		return fmt.Sprintf("%s (rank %d) is not below %s (rank %d)", depTop, depRank, top, rank)
	case rank != pureLayer:
		return ""
	case !info.Standard:
		return "presence stays pure Go: no third-party packages"
	case dep == "net":
		// Package net is the sockets: net/http, crypto/tls and the rest
		// of the networking import it, the parsers (net/url, net/netip)
		// do not.
		return "presence stays pure Go: no networking"
	}
	return ""
}

// importChain returns the import path from one package to another, through
// direct imports (breadth first, so the shortest).
func importChain(pkgs map[string]listedPackage, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			var chain []string
			for p := to; p != ""; p = prev[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			return chain
		}
		for _, next := range pkgs[cur].Imports {
			if _, seen := prev[next]; !seen {
				prev[next] = cur
				queue = append(queue, next)
			}
		}
	}
	return []string{from, "...", to}
}

func sortedPackages(pkgs map[string]listedPackage) []listedPackage {
	out := make([]listedPackage, 0, len(pkgs))
	for _, p := range pkgs {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b listedPackage) int { return strings.Compare(a.ImportPath, b.ImportPath) })
	return out
}

// relPath returns path relative to the module, and whether it is in it.
func relPath(module, path string) (string, bool) {
	if path == module {
		return ".", true
	}
	rel, ok := strings.CutPrefix(path, module+"/")
	return rel, ok
}

func topDir(rel string) string {
	top, _, _ := strings.Cut(rel, "/")
	return top
}

// TestViolationsFound runs the check on a made-up module, so that a check
// that finds nothing cannot pass for one that holds.
func TestViolationsFound(t *testing.T) {
	const m = "example.com/m"
	std := func(path string, imports ...string) listedPackage {
		return listedPackage{ImportPath: path, Standard: true, Imports: imports}
	}
	pkg := func(path string, imports ...string) listedPackage {
		return listedPackage{ImportPath: path, Imports: imports}
	}
	pkgs := map[string]listedPackage{}
	for _, p := range []listedPackage{
		std("fmt"), std("net"), std("net/http", "net"),
		pkg("github.com/nats-io/nats.go"),
		pkg(m+"/internal/strictjson", "fmt"),
		pkg(m+"/presence", m+"/internal/strictjson", "net/http"),
		pkg(m+"/presence/rules", m+"/presence", "github.com/nats-io/nats.go"),
		pkg(m+"/hub", m+"/presence", m+"/web"),
		pkg(m+"/transport", m+"/hub", m+"/transport/frames", m+"/internal/strictjson", "net/http"),
		pkg(m+"/transport/frames", "fmt"),
		pkg(m+"/internal/harness", m+"/transport/frames"),
		pkg(m+"/web", m+"/internal/harness"),
		pkg(m+"/cmd/app", m+"/transport", m+"/web", m+"/hub", m+"/presence"),
		pkg(m+"/tools", "fmt"),
	} {
		pkgs[p.ImportPath] = p
	}
	// Deps as go list gives them: everything reachable through Imports.
	for path, p := range pkgs {
		seen := map[string]bool{}
		var walk func(string)
		walk = func(from string) {
			for _, d := range pkgs[from].Imports {
				if !seen[d] {
					seen[d] = true
					walk(d)
				}
			}
		}
		walk(path)
		for d := range seen {
			p.Deps = append(p.Deps, d)
		}
		slices.Sort(p.Deps)
		pkgs[path] = p
	}
	got := violations(m, pkgs)
	want := []string{
		"hub imports example.com/m/web (example.com/m/hub -> example.com/m/web): web (rank 3) is not below hub (rank 2)",
		"presence imports net (example.com/m/presence -> net/http -> net): presence stays pure Go: no networking",
		"presence/rules imports github.com/nats-io/nats.go (example.com/m/presence/rules -> github.com/nats-io/nats.go): presence stays pure Go: no third-party packages",
		"presence/rules imports net (example.com/m/presence/rules -> example.com/m/presence -> net/http -> net): presence stays pure Go: no networking",
		"tools: tools/ has no rank in layers (arch_test.go): give it one",
		"transport imports example.com/m/web (example.com/m/transport -> example.com/m/hub -> example.com/m/web): web (rank 3) is not below transport (rank 3)",
		"web imports example.com/m/transport/frames (example.com/m/web -> example.com/m/internal/harness -> example.com/m/transport/frames): transport (rank 3) is not below web (rank 3)",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
