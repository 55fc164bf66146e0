// Package docs holds the engine's documentation. Its test keeps the
// documents honest about the code: every test a document cites as proof
// exists.
package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var citedTest = regexp.MustCompile("`(Test[A-Za-z0-9_]+)(\\*?)`")

func TestDocs_CitedTestsExist(t *testing.T) {
	defined := map[string]bool{}
	var names []string
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range regexp.MustCompile(`(?m)^func (Test[A-Za-z0-9_]+)\(`).FindAllStringSubmatch(string(src), -1) {
			defined[m[1]] = true
			names = append(names, m[1])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	docs, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range docs {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range citedTest.FindAllStringSubmatch(string(text), -1) {
			name, prefix := m[1], m[2] == "*"
			found := defined[name]
			for _, n := range names {
				found = found || prefix && strings.HasPrefix(n, name)
			}
			if !found {
				t.Errorf("%s cites %s, which no test defines", doc, m[0])
			}
		}
	}
}
