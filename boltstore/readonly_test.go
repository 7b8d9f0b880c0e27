package boltstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/store/storetest"
)

func fileSum(t *testing.T, path string) [sha256.Size]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// writeExpiringFile makes a store file holding a live record and an expired one
// (which a sweeper would delete), then closes it.
func writeExpiringFile(t *testing.T, path string, clock *storetest.Clock) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(path, store.WithClock(clock.Now), store.WithTTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, "old", store.Change{Set: map[string][]byte{"a": []byte("A")}}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	if _, err := s.Apply(ctx, "live", store.Change{Set: map[string][]byte{"b": []byte("B")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAReadOnlyStoreReadsAndLeavesItsFileByteForByte(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ctx.db")
	clock := storetest.NewClock()
	writeExpiringFile(t, path, clock)
	before := fileSum(t, path)

	opts := []Option{WithReadOnly(), store.WithClock(clock.Now), store.WithTTL(time.Hour)}
	s := openAt(t, path, opts...)
	other := openAt(t, path, opts...) // readers share the file
	if r, err := s.Load(ctx, "live"); err != nil || string(r.Fields["b"]) != "B" {
		t.Errorf("Load = %v, %v; want the record", r, err)
	}
	if _, err := other.Load(ctx, "old"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load of an expired record: %v, want ErrNotFound", err)
	}
	if ids, _, err := s.List(ctx, "", 0); err != nil || len(ids) != 1 || ids[0] != "live" {
		t.Errorf("List = %q, %v; want [live]", ids, err)
	}
	if d, err := s.TTL(ctx, "live"); err != nil || d != time.Hour {
		t.Errorf("TTL = %v, %v; want 1h", d, err)
	}
	writes := map[string]error{}
	_, writes["Apply"] = s.Apply(ctx, "live", store.Change{Set: map[string][]byte{"b": []byte("C")}})
	writes["Delete"] = s.Delete(ctx, "live")
	writes["Touch"] = s.Touch(ctx, "live")
	_, writes["Sweep"] = s.Sweep(ctx)
	for name, err := range writes {
		if !errors.Is(err, ErrReadOnly) {
			t.Errorf("%s on a read-only store: %v, want ErrReadOnly", name, err)
		}
	}
	for _, st := range []*Store{s, other} {
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if fileSum(t, path) != before {
		t.Error("opening the file read-only changed it")
	}
}

func TestATouchWithoutTTLOnAReadOnlyStoreIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctx.db")
	writeExpiringFile(t, path, storetest.NewClock())
	// Without a TTL a Touch of a record that has an expiry would clear it:
	// a write.
	s := openAt(t, path, WithReadOnly())
	if err := s.Touch(context.Background(), "live"); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Touch: %v, want ErrReadOnly", err)
	}
}

func TestNewMakesAReadOnlyStoreOnAReadOnlyDBOrWithTheOption(t *testing.T) {
	cases := []struct {
		name   string
		dbOpts *bbolt.Options
		opts   []Option
	}{
		{"on a db opened read-only", &bbolt.Options{ReadOnly: true}, nil},
		{"WithReadOnly on a writable db", nil, []Option{WithReadOnly()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ctx.db")
			writeExpiringFile(t, path, storetest.NewClock())
			db, err := bbolt.Open(path, 0o600, c.dbOpts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			s, err := New(db, c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if _, err := s.Load(context.Background(), "live"); err != nil {
				t.Errorf("Load: %v", err)
			}
			if err := s.Delete(context.Background(), "live"); !errors.Is(err, ErrReadOnly) {
				t.Errorf("Delete: %v, want ErrReadOnly", err)
			}
		})
	}
}

func TestStoresThatMustFindTheirFileCreateNothing(t *testing.T) {
	for name, opt := range map[string]Option{"WithNoCreate": WithNoCreate(), "WithReadOnly": WithReadOnly()} {
		t.Run(name+" does not create a missing file", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "typo.db")
			if s, err := Open(path, opt); !errors.Is(err, fs.ErrNotExist) {
				if err == nil {
					s.Close()
				}
				t.Errorf("Open of a missing file: %v, want an error matching fs.ErrNotExist", err)
			}
			if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the missing file was created (stat: %v)", err)
			}
		})
		t.Run(name+" does not create a missing bucket and names those there are", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ctx.db")
			writeExpiringFile(t, path, storetest.NewClock())
			openAt(t, path, WithBucket("other")).Close()
			before := fileSum(t, path)
			s, err := Open(path, opt, WithBucket("zzz"))
			if err == nil {
				s.Close()
			}
			if !errors.Is(err, ErrNoBucket) || !strings.Contains(err.Error(), `"livectx", "other"`) {
				t.Errorf("Open with a missing bucket: %v, want ErrNoBucket naming \"livectx\", \"other\"", err)
			}
			if fileSum(t, path) != before {
				t.Error("opening a missing bucket changed the file")
			}
		})
	}
}

func TestANoCreateStoreWritesWhatItFound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctx.db")
	writeExpiringFile(t, path, storetest.NewClock())
	s := openAt(t, path, WithNoCreate())
	if err := s.Delete(context.Background(), "live"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(context.Background(), "live"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load after Delete: %v, want ErrNotFound", err)
	}
}
