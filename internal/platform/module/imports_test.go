package module_test

import (
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The import rules of ARCHITECTURE.md and STYLE.md, enforced on the source:
//   - internal/platform/... imports nothing of internal/ outside platform (it
//     knows no module and no shop vocabulary);
//   - a module (internal/<name>, with its sub-packages) imports another
//     module only through its root package — its small exported API — never
//     a sub-package of it, except, from test files, its test-support
//     package <name>test (accountstest, like sqldbtest and webtest);
//   - the modules' import graph has no cycle (also through sub-packages,
//     which the compiler alone would allow);
//   - value packages shared by modules (sharedPackages) import no module.
//
// sharedPackages are the shop's vocabulary: value types every module may
// use. They are not modules (event payloads are their modules' own).
var sharedPackages = []string{"money"}

const modulePath = "mercato/internal/"

func TestImportRules(t *testing.T) {
	root := filepath.Join("..", "..") // internal/
	imports := map[string]map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(rel)
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		if imports[pkg] == nil {
			imports[pkg] = map[string]bool{}
		}
		for _, s := range f.Imports {
			p, _ := strconv.Unquote(s.Path.Value)
			if strings.HasPrefix(p, modulePath) {
				imp := strings.TrimPrefix(p, modulePath)
				imports[pkg][imp] = true
				if to := top(imp); to != top(pkg) && testSupport(imp, to) && !strings.HasSuffix(path, "_test.go") {
					t.Errorf("%s imports %s, a test-support package, outside a test file", path, imp)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(imports) < 5 || imports["platform/web"] == nil {
		t.Fatalf("walked %d packages from %s; the test must run from internal/platform/module", len(imports), root)
	}
	for _, v := range violations(imports) {
		t.Error(v)
	}
}

// top is the first path element: "accounts" of "accounts/store".
func top(pkg string) string { first, _, _ := strings.Cut(pkg, "/"); return first }

// violations lists every broken rule in imports (package → imported
// packages, both relative to internal/).
func violations(imports map[string]map[string]bool) []string {
	var out []string
	moduleGraph := map[string]map[string]bool{}
	pkgs := make([]string, 0, len(imports))
	for p := range imports {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	for _, pkg := range pkgs {
		from := top(pkg)
		for _, imp := range sortedKeys(imports[pkg]) {
			to := top(imp)
			switch {
			case from == "platform":
				if to != "platform" {
					out = append(out, fmt.Sprintf("platform package %s imports %s: platform knows no module and no shop vocabulary", pkg, imp))
				}
			case slices.Contains(sharedPackages, from):
				if to != "platform" && !slices.Contains(sharedPackages, to) {
					out = append(out, fmt.Sprintf("shared package %s imports module package %s", pkg, imp))
				}
			case to == from || to == "platform" || slices.Contains(sharedPackages, to):
			default:
				if imp != to && !testSupport(imp, to) {
					out = append(out, fmt.Sprintf("module package %s imports %s, a sub-package of module %s: use its exported API", pkg, imp, to))
				}
				if moduleGraph[from] == nil {
					moduleGraph[from] = map[string]bool{}
				}
				moduleGraph[from][to] = true
			}
		}
	}
	if c := cycle(moduleGraph); c != nil {
		out = append(out, "modules import each other in a cycle: "+strings.Join(c, " → "))
	}
	return out
}

// cycle returns one cycle of g (its nodes, the first repeated at the end),
// or nil.
func cycle(g map[string]map[string]bool) []string {
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(n string) []string
	visit = func(n string) []string {
		state[n] = onPath
		path = append(path, n)
		for _, m := range sortedKeys(g[n]) {
			switch state[m] {
			case onPath:
				i := slices.Index(path, m)
				return append(slices.Clone(path[i:]), m)
			case unseen:
				if c := visit(m); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		state[n] = done
		return nil
	}
	for _, n := range sortedKeys(g) {
		if state[n] == unseen {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The rules themselves, on made-up graphs: each case must be found.
func TestImportRuleViolations(t *testing.T) {
	tests := []struct {
		name    string
		imports map[string]map[string]bool
		want    []string // substrings, one per violation
	}{
		{"clean", map[string]map[string]bool{
			"platform/web": {"platform/errs": true},
			"accounts":     {"platform/web": true, "audit": true, "money": true, "accounts/internal": true},
			"audit":        {"platform/sqldb": true},
			"money":        {},
		}, nil},
		{"platform imports a module", map[string]map[string]bool{"platform/web": {"accounts": true}}, []string{"platform package platform/web imports accounts"}},
		{"platform imports shop vocabulary", map[string]map[string]bool{"platform/outbox": {"money": true}}, []string{"platform package platform/outbox imports money"}},
		{"sub-package of another module", map[string]map[string]bool{"orders": {"catalog/search": true}}, []string{"imports catalog/search, a sub-package of module catalog"}},
		{"another module's test support", map[string]map[string]bool{"orders": {"accounts/accountstest": true}}, nil},
		{"a sub-package named like test support is not", map[string]map[string]bool{"orders": {"accounts/ordertest": true}},
			[]string{"imports accounts/ordertest, a sub-package of module accounts"}},
		{"shared imports a module", map[string]map[string]bool{"money": {"orders": true}}, []string{"shared package money imports module package orders"}},
		{"cycle through a sub-package", map[string]map[string]bool{
			"orders":        {"catalog": true},
			"catalog/index": {"inventory": true},
			"inventory":     {"orders": true},
		}, []string{"cycle: catalog → inventory → orders → catalog"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := violations(tc.imports)
			if len(got) != len(tc.want) {
				t.Fatalf("violations = %q, want %d matching %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("violation %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

// testSupport reports whether imp is module to's test-support package
// (internal/<to>/<to>test), which other modules' tests may use.
func testSupport(imp, to string) bool { return imp == to+"/"+to+"test" }
