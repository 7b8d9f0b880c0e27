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
func TestErrorsNameEachPackageOnce(t *testing.T) {
	type ctr struct {
		N int `msgpack:"n"`
	}
	n := socket.FieldOf(func(c *ctr) *int { return &c.N })
	open := func(t *testing.T) (*memory.Store, *socket.Socket[ctr]) {
		st := memory.New()
		t.Cleanup(func() { st.Close() })
		s, err := socket.NewManager[ctr](socket.WithStore(st)).Open(t.Context(), "b", ctr{})
		if err != nil {
			t.Fatal(err)
		}
		return st, s
	}
	tests := []struct {
		name string
		call func(t *testing.T) error
		want error
	}{
		{"an assign on a closed socket", func(t *testing.T) error {
			_, s := open(t)
			if err := s.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			return s.Assign(n.Set(1))
		}, socket.ErrClosed},
		{"a render on a closed socket", func(t *testing.T) error {
			_, s := open(t)
			if err := s.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
			return s.Render(t.Context(), nil)
		}, socket.ErrClosed},
		{"a render over a closed store", func(t *testing.T) error {
			st, s := open(t)
			if err := s.Assign(n.Set(1)); err != nil {
				t.Fatal(err)
			}
			st.Close()
			return s.Render(t.Context(), nil)
		}, store.ErrClosed},
		{"a stale render", func(t *testing.T) error {
			st, s := open(t)
			if _, err := st.Apply(t.Context(), "b", store.Change{}); err != nil {
				t.Fatal(err)
			}
			if err := s.Assign(n.Set(1)); err != nil {
				t.Fatal(err)
			}
			return s.Render(t.Context(), nil)
		}, store.ErrConflict},
	}
	for _, tt := range tests {
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
