package socket_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/socket"
	"github.com/livectx/livectx/store"
)

// An error names each package it passed through once: a closed socket once
// said `socket: assign "b": socket: closed`.
type errCtr struct {
	N int `msgpack:"n"`
}

var errN = socket.FieldOf(func(c *errCtr) *int { return &c.N })

func openErrSocket(t *testing.T) (*memory.Store, *socket.Socket[errCtr]) {
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	s, err := socket.NewManager[errCtr](socket.WithStore(st)).Open(t.Context(), "b", errCtr{})
	if err != nil {
		t.Fatal(err)
	}
	return st, s
}

// errorCalls are calls that fail, each with the sentinel its error matches.
var errorCalls = []struct {
	name string
	call func(t *testing.T) error
	want error
}{
	{"an assign on a closed socket", func(t *testing.T) error {
		_, s := openErrSocket(t)
		if err := s.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s.Assign(errN.Set(1))
	}, socket.ErrClosed},
	{"a render on a closed socket", func(t *testing.T) error {
		_, s := openErrSocket(t)
		if err := s.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		return s.Render(t.Context(), nil)
	}, socket.ErrClosed},
	{"a render over a closed store", func(t *testing.T) error {
		st, s := openErrSocket(t)
		if err := s.Assign(errN.Set(1)); err != nil {
			t.Fatal(err)
		}
		st.Close()
		return s.Render(t.Context(), nil)
	}, store.ErrClosed},
	{"a stale render", func(t *testing.T) error {
		st, s := openErrSocket(t)
		if _, err := st.Apply(t.Context(), "b", store.Change{}); err != nil {
			t.Fatal(err)
		}
		if err := s.Assign(errN.Set(1)); err != nil {
			t.Fatal(err)
		}
		return s.Render(t.Context(), nil)
	}, store.ErrConflict},
}

func TestErrorsNameEachPackageOnce(t *testing.T) {
	for _, tt := range errorCalls {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(t)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want one matching %v", err, tt.want)
			}
			for _, pkg := range []string{"socket: ", "memory: ", "store: "} {
				if c := strings.Count(err.Error(), pkg); c > 1 {
					t.Errorf("%q names %q %d times", err, pkg, c)
				}
			}
		})
	}
}
