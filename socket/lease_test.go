package socket

import (
	"testing"
	"time"

	"github.com/livectx/livectx/codec"
	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/store"
)

// A lease left by a node that died (it claimed the next write, then never
// wrote) holds the other nodes' events until it is void, then goes with
// their next write.
func TestALeaseLeftBehindDelaysEventsUntilItIsVoid(t *testing.T) {
	type page struct {
		N int `msgpack:"n"`
	}
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	m := NewManager[page](WithStore(st))
	s, err := m.Open(t.Context(), "leased", page{})
	if err != nil {
		t.Fatal(err)
	}
	inc := func() error { return s.Assign(Set("n", s.state.N+1)) }
	if err := s.Event(t.Context(), inc, nil); err != nil {
		t.Fatal(err)
	}
	const hold = 150 * time.Millisecond
	b, err := codec.Marshal(claim{Owner: "dead-node", Until: time.Now().Add(hold).UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(t.Context(), "leased", store.Change{Set: map[string][]byte{leaseField: b}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := s.Event(t.Context(), inc, nil); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < hold*2/3 {
		t.Fatalf("the event landed after %v, while another node's lease held for %v", waited, hold)
	}
	rec, err := st.Load(t.Context(), "leased")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rec.Fields[leaseField]; ok || s.state.N != 2 {
		t.Fatalf("after the event: fields %d (lease kept: %v), n %d; want the lease gone and n 2", len(rec.Fields), ok, s.state.N)
	}
}
