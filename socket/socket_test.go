package socket_test

import (
	"errors"
	"testing"
	"time"

	"github.com/livectx/livectx/codec"
	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/socket"
	"github.com/livectx/livectx/socket/sockettest"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/store/storetest"
)

func TestSocketOverMemory(t *testing.T) {
	sockettest.Run(t, func(t *testing.T) store.ContextStore {
		s := memory.New()
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestDefaultStoreIsMemory(t *testing.T) {
	m := socket.NewManager[struct{ N int }]()
	t.Cleanup(func() { m.Close() })
	if _, ok := m.Store().(*memory.Store); !ok {
		t.Fatalf("default store is a %T, want *memory.Store", m.Store())
	}
}

func TestContextTypesThatAreRefused(t *testing.T) {
	type embedded struct{ A int }
	cases := []struct {
		name string
		open func() error
	}{
		{"a type that is not a struct", func() error {
			_, err := socket.NewManager[map[string]int]().Open(t.Context(), "x", nil)
			return err
		}},
		{"two fields sharing a name", func() error {
			type dup struct {
				A int `msgpack:"x"`
				B int `msgpack:"x"`
			}
			_, err := socket.NewManager[dup]().Open(t.Context(), "x", dup{})
			return err
		}},
		{"an embedded struct without a name", func() error {
			type emb struct{ Embedded }
			_, err := socket.NewManager[emb]().Open(t.Context(), "x", emb{})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.open(); err == nil {
				t.Fatal("Open succeeded")
			}
		})
	}
	_ = embedded{}
}

// Embedded is exported so that embedding it makes an exported field.
type Embedded struct{ A int }

func TestKeepOnCloseExpiresOneTTLAfterClose(t *testing.T) {
	clock := storetest.NewClock()
	st := memory.New(store.WithTTL(time.Minute), store.WithClock(clock.Now))
	t.Cleanup(func() { st.Close() })
	views := socket.NewManager[struct{ N int }](socket.WithStore(st), socket.KeepOnClose())
	s, err := views.Open(t.Context(), "keep", struct{ N int }{N: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Assign(socket.Set("N", 2)); err != nil {
		t.Fatal(err)
	}
	if err := s.Render(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	clock.Advance(50 * time.Second) // the last write is 50s old
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(50 * time.Second)
	if _, err := st.Load(t.Context(), "keep"); err != nil {
		t.Fatalf("50s after a KeepOnClose close: Load = %v, want the record", err)
	}
	clock.Advance(11 * time.Second)
	if _, err := st.Load(t.Context(), "keep"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("61s after the close: Load = %v, want ErrNotFound", err)
	}
}

func TestRenderWithoutARenderFuncStillWrites(t *testing.T) {
	type ctr struct {
		N int `msgpack:"n"`
	}
	n := socket.FieldOf(func(c *ctr) *int { return &c.N })
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	s, err := socket.NewManager[ctr](socket.WithStore(st)).Open(t.Context(), "nil-render", ctr{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Assign(n.Set(7)); err != nil {
		t.Fatal(err)
	}
	if err := s.Render(t.Context(), nil); err != nil {
		t.Fatalf("Render(nil) = %v", err)
	}
	rec, err := st.Load(t.Context(), "nil-render")
	if err != nil {
		t.Fatal(err)
	}
	var got int
	if err := codec.Unmarshal("nil-render", "n", rec.Fields["n"], &got); err != nil || got != 7 {
		t.Fatalf("stored n = %d, %v; want 7", got, err)
	}
}

// The store's field cap, not the codec, decides how large a field may be:
// the codec once refused anything over 8 MiB whatever the store allowed,
// with an error that did not match store.ErrTooLarge.
func TestTheStoresFieldCapDecidesTheLargestField(t *testing.T) {
	type page struct {
		Blob []byte `msgpack:"blob"`
	}
	blob := socket.FieldOf(func(p *page) *[]byte { return &p.Blob })
	big := make([]byte, 9<<20)
	for name, c := range map[string]struct {
		opts    []memory.Option
		wantErr error
	}{
		"a 9 MiB field under a 32 MiB cap is written and read back": {[]memory.Option{store.WithMaxFieldSize(32 << 20), store.WithMaxRecordSize(64 << 20)}, nil},
		"a 9 MiB field under the default 8 MiB cap is ErrTooLarge":  {nil, store.ErrTooLarge},
	} {
		t.Run(name, func(t *testing.T) {
			st := memory.New(c.opts...)
			t.Cleanup(func() { st.Close() })
			m := socket.NewManager[page](socket.WithStore(st))
			s, err := m.Open(t.Context(), "big", page{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Assign(blob.Set(big)); err != nil {
				t.Fatal(err)
			}
			err = s.Render(t.Context(), nil)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("Render = %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			again, err := m.Open(t.Context(), "big", page{})
			if err != nil {
				t.Fatal(err)
			}
			if got := blob.Get(again); len(got) != len(big) {
				t.Fatalf("read back %d bytes, want %d", len(got), len(big))
			}
		})
	}
}
