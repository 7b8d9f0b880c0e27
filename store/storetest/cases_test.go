package storetest

import (
	"testing"

	"github.com/livectx/livectx/memory"
)

// The helpers take name, value pairs: an odd argument is a mistake in a
// test, which must fail it rather than vanish.
func TestHelpersRefuseAnOddArgument(t *testing.T) {
	s := memory.New()
	t.Cleanup(func() { s.Close() })
	apply(t, s, "r", set("a", "A"))
	for name, call := range map[string]func(){
		"set":        func() { set("a", "A", "b") },
		"wantFields": func() { wantFields(t, s, "r", "a", "A", "b") },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("%s with an odd argument did not fail", name)
				}
			}()
			call()
		})
	}
}
