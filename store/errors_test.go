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
		store.ErrInvalidID, store.ErrInvalidField, store.ErrCorrupt, store.ErrUnsupported,
		&store.CorruptError{ID: "r", Err: errors.New("bad")},
		&store.CorruptError{ID: "r", Field: "f", Err: errors.New("bad")},
	} {
		if !strings.HasPrefix(err.Error(), "store: ") {
			t.Errorf("%q does not start with \"store: \"", err)
		}
	}
}

func TestVersionConflictNamesBothVersions(t *testing.T) {
	tests := []struct {
		stored, expected uint64
		want             string
	}{
		{3, 2, "store: version conflict: record at version 3, expected 2"},
		{0, 2, "store: version conflict: no record stored, expected version 2"},
		{3, 0, "store: version conflict: record at version 3, expected none"},
	}
	for _, tt := range tests {
		err := store.VersionConflict(tt.stored, tt.expected)
		if !errors.Is(err, store.ErrConflict) || err.Error() != tt.want {
			t.Errorf("VersionConflict(%d, %d) = %q, want %q matching ErrConflict", tt.stored, tt.expected, err, tt.want)
		}
	}
}
