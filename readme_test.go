package livectx_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Every environment variable the code reads is in the tables of the README
// and of ARCHITECTURE.md.
func TestTheREADMENamesEveryEnvironmentSwitch(t *testing.T) {
	name := regexp.MustCompile(`"(LIVECTX_[A-Z_]+)"`)
	var switches []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata"):
			return filepath.SkipDir
		case d.IsDir() || !strings.HasSuffix(path, ".go"):
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range name.FindAllStringSubmatch(string(src), -1) {
			if !slices.Contains(switches, m[1]) {
				switches = append(switches, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{"README.md", "ARCHITECTURE.md"} {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		var missing []string
		for _, sw := range switches {
			if !strings.Contains(string(text), "`"+sw) {
				missing = append(missing, sw)
			}
		}
		if len(missing) > 0 {
			t.Errorf("the table of environment switches in %s lacks %q", doc, missing)
		}
	}
}
