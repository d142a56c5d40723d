package archtest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// mustNotImport names packages that may not depend, directly or not, on
// others of the module, beyond what the layers allow: the parts that read
// the event stream stand beside the hub, not on it. An entry "dir/..."
// refuses dir and every package under it.
var mustNotImport = map[string][]string{
	"hub/history":       {"hub"},
	"transport/webhook": {"hub"},
	// hub/cluster (membership, partition ownership) is wired into the hub
	// and stands on the members bucket (hub/store) alone.
	"hub/cluster": {"hub", "hub/change", "hub/events", "hub/history"},
	// presence is the rules alone: no package of the module under it.
	"presence": {"*"},
	// client is what runs in agents' apps: the wire (protocol) and nothing
	// of the hub's inside. The layers already keep transport, web and cmd
	// out.
	"client": {"hub/..."},
}

func TestPartsStandApart(t *testing.T) {
	module, pkgs := goList(t)
	for _, v := range partViolations(module, pkgs) {
		t.Error(v)
	}
}

// partViolations returns one line per dependency mustNotImport refuses.
func partViolations(module string, pkgs map[string]listedPackage) []string {
	var out []string
	for _, p := range sortedPackages(pkgs) {
		rel, ok := relPath(module, p.ImportPath)
		if !ok {
			continue
		}
		refused, ok := mustNotImport[rel]
		if !ok {
			continue
		}
		for _, dep := range p.Deps {
			depRel, inModule := relPath(module, dep)
			if !inModule {
				continue
			}
			if slices.ContainsFunc(refused, func(r string) bool { return refuses(r, depRel) }) {
				chain := importChain(pkgs, p.ImportPath, dep)
				out = append(out, fmt.Sprintf("%s imports %s (%s)", rel, depRel, strings.Join(chain, " -> ")))
			}
		}
	}
	return out
}

// refuses reports whether the mustNotImport entry r names the package rel.
func refuses(r, rel string) bool {
	if dir, ok := strings.CutSuffix(r, "/..."); ok {
		return rel == dir || strings.HasPrefix(rel, dir+"/")
	}
	return r == "*" || r == rel
}

// storeDir is the one package that may use the JetStream key-value API.
const storeDir = "hub/store"

// kvNames are the names of nats.go's jetstream package that make up its
// key-value API: its types, options and errors, and the calls of a
// JetStream context that open a bucket. Without a key-value handle, or one
// of these, no other call of the API can be made.
func kvName(name string) bool {
	return strings.Contains(name, "KeyValue") || strings.HasPrefix(name, "KV") || strings.HasPrefix(name, "ErrKey") ||
		strings.HasPrefix(name, "ErrBucket") || slices.Contains([]string{"KeyWatcher", "KeyTTL", "ErrNoKeysFound", "KeyLister", "WatchOpt"}, name)
}

// TestOnlyTheStoreUsesTheKeyValueAPI: outside hub/store, no Go file of the
// module (tests aside, which check the bucket from outside) names a part of
// the key-value API.
func TestOnlyTheStoreUsesTheKeyValueAPI(t *testing.T) {
	root := moduleRoot(t)
	for _, v := range kvViolations(t, root) {
		t.Error(v)
	}
}

func kvViolations(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == storeDir || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		out = append(out, kvUses(t, path, rel)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// kvUses lists the key-value API's names that the file at path uses.
func kvUses(t *testing.T, path, rel string) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	alias := ""
	for _, imp := range f.Imports {
		if strings.Trim(imp.Path.Value, `"`) == "github.com/nats-io/nats.go/jetstream" {
			alias = "jetstream"
			if imp.Name != nil {
				alias = imp.Name.Name
			}
		}
	}
	if alias == "" {
		return nil
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok || !kvName(sel.Sel.Name) {
			return true
		}
		// jetstream.KeyValue..., or js.CreateOrUpdateKeyValue(...) on a
		// JetStream context.
		if id, ok := sel.X.(*ast.Ident); (ok && id.Name == alias) || strings.Contains(sel.Sel.Name, "KeyValue") {
			out = append(out, fmt.Sprintf("%s:%d uses %s of the key-value API: only %s may", rel, fset.Position(sel.Pos()).Line, sel.Sel.Name, storeDir))
		}
		return true
	})
	return out
}

// moduleRoot returns the module's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(string(run(t, "", "go", "list", "-m", "-f", "{{.Dir}}")))
}

// TestPartCheckFindsViolations runs both checks on made-up input, so that
// a check that finds nothing cannot pass for one that holds.
func TestPartCheckFindsViolations(t *testing.T) {
	const m = "example.com/m"
	pkgs := map[string]listedPackage{
		m + "/hub/history": {ImportPath: m + "/hub/history", Imports: []string{m + "/hub"}, Deps: []string{m + "/hub", m + "/presence"}},
		m + "/hub":         {ImportPath: m + "/hub", Imports: []string{m + "/presence"}, Deps: []string{m + "/presence"}},
		m + "/presence":    {ImportPath: m + "/presence", Imports: []string{m + "/internal/x"}, Deps: []string{m + "/internal/x"}},
		m + "/internal/x":  {ImportPath: m + "/internal/x"},
		m + "/hub/store":   {ImportPath: m + "/hub/store"},
		m + "/client":      {ImportPath: m + "/client", Imports: []string{m + "/hub/store"}, Deps: []string{m + "/hub/store"}},
		m + "/protocol":    {ImportPath: m + "/protocol"},
	}
	got := partViolations(m, pkgs)
	want := []string{
		"client imports hub/store (example.com/m/client -> example.com/m/hub/store)",
		"hub/history imports hub (example.com/m/hub/history -> example.com/m/hub)",
		"presence imports internal/x (example.com/m/presence -> example.com/m/internal/x)",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	dir := t.TempDir()
	for name, src := range map[string]string{
		"hub/kv.go":          "package hub\nimport js \"github.com/nats-io/nats.go/jetstream\"\nvar _ js.KeyValue\nfunc f(j js.JetStream) { j.CreateOrUpdateKeyValue(nil, js.KeyValueConfig{}) }\n",
		"hub/stream.go":      "package hub\nimport \"github.com/nats-io/nats.go/jetstream\"\nvar _ jetstream.Stream\n",
		"hub/store/store.go": "package store\nimport \"github.com/nats-io/nats.go/jetstream\"\nvar _ jetstream.KeyValue\n",
		"hub/kv_test.go":     "package hub\nimport \"github.com/nats-io/nats.go/jetstream\"\nvar _ jetstream.KeyValue\n",
	} {
		path := filepath.Join(dir, name)
		if err := mkdirWrite(path, src); err != nil {
			t.Fatal(err)
		}
	}
	got = kvViolations(t, dir)
	want = []string{
		"hub/kv.go:3 uses KeyValue of the key-value API: only hub/store may",
		"hub/kv.go:4 uses CreateOrUpdateKeyValue of the key-value API: only hub/store may",
		"hub/kv.go:4 uses KeyValueConfig of the key-value API: only hub/store may",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got key-value uses:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func mkdirWrite(path, src string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(src), 0o644)
}
