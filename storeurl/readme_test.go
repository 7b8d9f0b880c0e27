package storeurl

import (
	"os"
	"strings"
	"testing"
)

// The README's store URL section names every parameter Open accepts.
func TestTheREADMENamesEveryURLParameter(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "### Store URLs")
	section, _, _ = strings.Cut(section, "\n#")
	names := []string{"ttl", "max_field", "max_record"}
	for _, kindParams := range params {
		names = append(names, kindParams...)
	}
	for _, name := range names {
		if !strings.Contains(section, name+"=") {
			t.Errorf("the README's store URL section does not name %s=", name)
		}
	}
}
