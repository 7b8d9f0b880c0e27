package livectx_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/livectx/livectx/internal/testbackends"
	"github.com/livectx/livectx/socket"
	"github.com/livectx/livectx/socket/sockettest"
	"github.com/livectx/livectx/store"
	"github.com/livectx/livectx/store/storetest"
	"github.com/livectx/livectx/token"
)

type viewedPage struct {
	Count int    `msgpack:"count"`
	Text  string `msgpack:"text"`
}

var viewedCount = socket.FieldOf(func(p *viewedPage) *int { return &p.Count })

// census counts the records st holds and their bytes, as store.Record.Size
// counts them.
func census(t *testing.T, st store.ContextStore) (records, size int) {
	t.Helper()
	l, ok := st.(store.Lister)
	if !ok {
		t.Fatalf("%T cannot list its records", st)
	}
	for cursor := ""; ; {
		ids, next, err := l.List(t.Context(), cursor, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			rec, err := st.Load(t.Context(), id)
			if err != nil {
				t.Fatalf("load %q: %v", id, err)
			}
			records, size = records+1, size+rec.Size()
		}
		if next == "" {
			return records, size
		}
		cursor = next
	}
}

// TestPageViewsWriteNothing floods every backend with 100,000 page views
// that assign nothing (a visitor opens a page and leaves): nine in ten on
// ids minted for them, one in ten on a page that already exists. The
// store's record count and byte count do not move, and no view writes: a
// flood of anonymous visitors cannot fill the store (issue 14). -short
// floods with 10,000.
func TestPageViewsWriteNothing(t *testing.T) {
	const workers, existing = 16, 10
	views := 100_000
	if testing.Short() {
		views = 10_000
	}
	for _, b := range testbackends.All {
		views := views
		if strings.Contains(b.Name, "miniredis") {
			// The emulator is the slowest by far (170 s under -race for
			// 100,000); the real server and cluster take the full flood.
			views = min(views, 10_000)
		}
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel() // the Redis floods wait on their servers
			st := b.Open(t, storetest.NewClock())
			counter := sockettest.CountOnly(st)
			mgr := socket.NewManager[viewedPage](socket.WithStore(counter), socket.KeepOnClose())
			signer, err := token.NewSigner([][]byte{bytes.Repeat([]byte("k"), token.MinKeySize)})
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			noRender := func(viewedPage, socket.Changed) error { return nil }
			var pages []string // tokens of pages that have had events
			for i := range existing {
				_, tok, err := signer.Mint("owner")
				if err != nil {
					t.Fatal(err)
				}
				s, err := mgr.OpenToken(ctx, signer, tok, "owner", viewedPage{})
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Event(ctx, func() error { return s.Assign(viewedCount.Set(i + 1)) }, noRender); err != nil {
					t.Fatal(err)
				}
				pages = append(pages, tok)
			}
			records, size := census(t, st)
			if records != existing || size == 0 {
				t.Fatalf("after %d pages with events the store holds %d records of %d bytes", existing, records, size)
			}
			counter.Reset()

			view := func(n int) error {
				owner, tok := "owner", pages[n%existing]
				if n%10 != 0 {
					owner = fmt.Sprint("visitor-", n)
					var err error
					if _, tok, err = signer.Mint(owner); err != nil {
						return err
					}
				}
				s, err := mgr.OpenToken(ctx, signer, tok, owner, viewedPage{})
				if err != nil {
					return err
				}
				// The visitor leaves: the socket is dropped unclosed, as a
				// server drops one whose connection never came (Close with
				// KeepOnClose would only refresh the time to live).
				return s.Render(ctx, noRender)
			}
			var (
				wg   sync.WaitGroup
				mu   sync.Mutex
				fail error
			)
			for w := range workers {
				wg.Go(func() {
					for n := w; n < views; n += workers {
						err := view(n)
						if err == nil && counter.Applies() > 0 {
							err = fmt.Errorf("page view %d wrote to the store", n)
						}
						if err != nil {
							mu.Lock()
							fail = err
							mu.Unlock()
							return
						}
						if n%1000 == 0 && ctx.Err() != nil {
							return
						}
					}
				})
			}
			wg.Wait()
			if fail != nil {
				got, gotSize := census(t, st)
				t.Fatalf("%v: %d writes; the store went from %d records of %d bytes to %d of %d", fail, counter.Applies(), records, size, got, gotSize)
			}
			got, gotSize := census(t, st)
			t.Logf("%d page views: %d store calls, %d writes; %d records of %d bytes before and %d of %d after",
				views, counter.Calls(), counter.Applies(), records, size, got, gotSize)
			if got != records || gotSize != size || counter.Applies() != 0 {
				t.Errorf("%d page views took the store from %d records of %d bytes to %d of %d with %d writes; want it unchanged and no write",
					views, records, size, got, gotSize, counter.Applies())
			}
		})
	}
}
