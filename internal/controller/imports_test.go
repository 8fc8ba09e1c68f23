package controller

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the layering of STYLE.md: controller reads the image
// (internal/cluster, its records) and nothing else of strata, speaks to
// other nodes with kmsg, and cluster never imports controller.
func TestImports(t *testing.T) {
	const mod = "github.com/strata-io/strata/"
	allowed := map[string]bool{
		mod + "internal/cluster":            true,
		mod + "internal/cluster/records":    true,
		"github.com/twmb/franz-go/pkg/kerr": true,
		"github.com/twmb/franz-go/pkg/kmsg": true,
	}
	check := func(glob string, ok func(path string) bool) {
		files, err := filepath.Glob(glob)
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %v, %d files", glob, err, len(files))
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if !ok(path) {
					t.Errorf("%s imports %s", f, path)
				}
			}
		}
	}
	check("*.go", func(path string) bool {
		return allowed[path] || !strings.Contains(strings.SplitN(path, "/", 2)[0], ".")
	})
	for _, dir := range []string{"../cluster/*.go", "../cluster/records/*.go"} {
		check(dir, func(path string) bool { return !strings.HasPrefix(path, mod+"internal/controller") })
	}
}
