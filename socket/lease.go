package socket

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/livectx/livectx/codec"
	"github.com/livectx/livectx/store"
)

// Two nodes that send events to one record at once would not take turns: a
// node whose socket is up to date writes at once, while one that met a
// conflict must load, handle and write, and the first node writes again in
// between, event after event. So an event that meets leaseAfter conflicts
// claims the next write: it stores a lease in the record without a version
// check, which makes every other socket's next write conflict, and an
// Event that reloads a record leased to another socket waits until the
// lease is gone (its owner's next write deletes it) or void (leaseTTL after
// it was claimed, by the waiter's clock: a node that died holding one
// delays the others that long at most).

// leaseField is the record field that holds a lease. newTable refuses a
// field name that starts with NUL, so no context type has it; sockets
// ignore it, and the inspector shows it.
const leaseField = "\x00lease"

const (
	leaseAfter = 2               // conflicts before an event claims the lease
	leaseTTL   = 2 * time.Second // a lease held longer than this is void
	leasePoll  = time.Millisecond
)

// claim is a lease, as stored.
type claim struct {
	Owner string `msgpack:"o"` // the socket's nonce
	Until int64  `msgpack:"u"` // unix nanoseconds
}

// live reports whether c is another socket's lease that still holds.
func (c claim) live(nonce string) bool {
	return c.Owner != "" && c.Owner != nonce && time.Now().UnixNano() < c.Until
}

// readLease notes the lease a restored record holds. A lease that is the
// socket's own, void or unreadable is deleted by the next write.
func (s *Socket[T]) readLease(b []byte) {
	if codec.Unmarshal(s.id, leaseField, b, &s.lease) != nil || !s.lease.live(s.nonce) {
		s.retire = append(s.retire, leaseField)
	}
}

// claimLease stores the socket's lease without a version check: the write
// moves the version, so every other socket's next write conflicts and its
// Event waits for the lease to go.
func (s *Socket[T]) claimLease(ctx context.Context) error {
	s.mu.Lock()
	if s.nonce == "" {
		s.nonce = rand.Text()
	}
	c := claim{Owner: s.nonce, Until: time.Now().Add(leaseTTL).UnixNano()}
	s.mu.Unlock()
	b, err := codec.Marshal(c)
	if err != nil {
		return err
	}
	_, err = s.store.Apply(ctx, s.id, store.Change{Set: map[string][]byte{leaseField: b}})
	return err
}

// releaseLease deletes the socket's lease if the event's write did not
// (an event that changed nothing writes nothing).
func (s *Socket[T]) releaseLease(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lease.Owner == "" || s.lease.Owner != s.nonce {
		return
	}
	v, err := s.store.Apply(ctx, s.id, store.Change{Delete: []string{leaseField}, CheckVersion: true, IfVersion: s.version})
	if err == nil { // else the lease goes with the next write, or is void by then
		s.version, s.retire, s.lease = v, nil, claim{}
	}
}

// waitReload reloads the stored context, and again, every leasePoll, while
// another socket holds a live lease on the record.
func (s *Socket[T]) waitReload(ctx context.Context) error {
	for {
		if err := s.Reload(ctx); err != nil {
			return err
		}
		s.mu.Lock()
		leased := s.lease.live(s.nonce)
		s.mu.Unlock()
		if !leased {
			return nil
		}
		t := time.NewTimer(leasePoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
