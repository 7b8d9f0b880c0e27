package socket_test

import (
	"context"
	"testing"

	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/socket"
	"github.com/livectx/livectx/socket/sockettest"
)

// benchContext holds one int and, in the large case, 1 MiB in other fields.
type benchContext struct {
	Count int      `msgpack:"count"`
	Blob  []byte   `msgpack:"blob"`
	Rows  []string `msgpack:"rows"`
}

var benchCount = socket.FieldOf(func(c *benchContext) *int { return &c.Count })

// BenchmarkRenderCycle measures one render cycle that assigns one int, into
// an otherwise empty context and into one holding 1 MiB in other fields,
// over the memory store. The bar: the second costs at most twice the first
// in time and allocations, and writes under 1 KiB per cycle.
func BenchmarkRenderCycle(b *testing.B) {
	for _, bc := range []struct {
		name    string
		initial benchContext
	}{
		{"empty", benchContext{}},
		{"1MiB", benchContext{Blob: make([]byte, 512<<10), Rows: rows(8192, 64)}}, // 512 KiB + 8192 x 64 B
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			st := memory.New()
			defer st.Close()
			counter := sockettest.CountOnly(st)
			views := socket.NewManager[benchContext](socket.WithStore(counter))
			s, err := views.Open(ctx, "bench", bc.initial)
			if err != nil {
				b.Fatal(err)
			}
			noRender := func(benchContext, socket.Changed) error { return nil }
			// The first write creates the record with every field; the
			// cycles measured are those of a page that has one.
			if err := s.Assign(benchCount.Set(1)); err != nil {
				b.Fatal(err)
			}
			if err := s.Render(ctx, noRender); err != nil {
				b.Fatal(err)
			}
			counter.Reset()
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				n++
				// 1000 and 1001 encode to the same length, as in both cases.
				if err := s.Assign(benchCount.Set(1000 + n%2)); err != nil {
					b.Fatal(err)
				}
				if err := s.Render(ctx, noRender); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(counter.BytesWritten())/float64(n), "written-B/op")
		})
	}
}

func rows(n, size int) []string {
	r := make([]string, n)
	for i := range r {
		r[i] = string(make([]byte, size))
	}
	return r
}
