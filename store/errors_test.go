package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/livectx/livectx/store"
)

// Every error of package store says so first, as every other package's do.
func TestErrorsStartWithTheirPackage(t *testing.T) {
	for _, err := range []error{
		store.ErrNotFound, store.ErrConflict, store.ErrClosed, store.ErrTooLarge,
		store.ErrInvalidID, store.ErrInvalidField, store.ErrCorrupt,
		&store.CorruptError{ID: "r", Err: errors.New("bad")},
		&store.CorruptError{ID: "r", Field: "f", Err: errors.New("bad")},
	} {
		if !strings.HasPrefix(err.Error(), "store: ") {
			t.Errorf("%q does not start with \"store: \"", err)
		}
	}
}
