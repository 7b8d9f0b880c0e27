package redisstore

import (
	"context"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"
)

// A call is one command on its way to the server: an Apply's script, a
// Load's HGETALL or a LoadFields' HMGET. go-redis may send a read again
// when its connection fails; a script it never does (see noRetry).
type call struct {
	args []any // the command: EVALSHA ... (see applyArgs), HGETALL key or HMGET key "" names...
	// Set before done is closed: the reply, or the error that kept it from
	// the caller.
	status, n int64             // an Apply's (see reply)
	hash      map[string]string // an HGETALL's
	values    []string          // an HMGET's, "" for a field the hash lacks
	err       error
	done      chan struct{}
}

// A queue holds calls of one kind (Store.writes, Store.loads) waiting for a
// round trip. Calls that arrive while maxSending round trips of their kind
// are in flight wait, and go together in the next one's pipeline (go-redis
// splits it among the nodes of a Cluster), so that under load (a burst of
// events, a node's clients reconnecting at once) the server reads, parses
// and answers many commands per round trip instead of one. Each command
// stays its own: a script is atomic on its own, and no command waits for
// another's reply.
type queue struct {
	mu      sync.Mutex
	calls   []*call
	sending int // round trips in flight
}

const (
	maxSending = 2
	maxBatch   = 128
)

// submit sends c through q and waits for its reply. It returns early when
// ctx ends: with ctx's error, and c is then either never sent or, when it
// was taken into a round trip already, perhaps applied.
func (s *Store) submit(ctx context.Context, q *queue, c *call) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.calls.Done()
	if err := ctx.Err(); err != nil {
		return err
	}

	q.mu.Lock()
	q.calls = append(q.calls, c)
	batch := q.take()
	q.mu.Unlock()
	if batch != nil {
		if ctx.Done() == nil {
			s.send(ctx, q, batch) // nothing to return early for
		} else {
			s.calls.Add(1)
			go func() {
				defer s.calls.Done()
				s.send(ctx, q, batch)
			}()
		}
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
	}
	q.mu.Lock()
	if i := slices.Index(q.calls, c); i >= 0 {
		q.calls = slices.Delete(q.calls, i, i+1)
		q.mu.Unlock()
		return ctx.Err() // never sent
	}
	q.mu.Unlock()
	select {
	case <-c.done: // it finished too: its reply is the truth
		return nil
	default:
		return ctx.Err()
	}
}

// take returns the calls for the next round trip, or nil when there are
// none or enough round trips are in flight. q.mu must be held.
func (q *queue) take() []*call {
	if len(q.calls) == 0 || q.sending >= maxSending {
		return nil
	}
	n := min(len(q.calls), maxBatch)
	// The batch keeps the front of the queue's array; capped, so that the
	// queue's later appends go past it.
	batch := q.calls[:n:n]
	q.calls = q.calls[n:]
	q.sending++
	return batch
}

// send runs the calls of batch, hands each its reply, then starts the next
// batch of q if calls are waiting. ctx is the context of the call that
// started the batch; only its values are kept, so that one caller giving up
// does not fail the others' calls (go-redis's timeouts bound the round
// trip).
func (s *Store) send(ctx context.Context, q *queue, batch []*call) {
	if ctx.Done() != nil { // nothing to strip otherwise: spare the allocation
		ctx = context.WithoutCancel(ctx)
	}
	cmds := s.exec(ctx, batch)
	// A server that lost its script cache ran none of the scripts: send
	// them again with the source, which EVAL also caches.
	var again []int
	var evals []*call
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") { // it allocates
			batch[i].args[0], batch[i].args[1] = "eval", applySource
			again, evals = append(again, i), append(evals, batch[i])
		}
	}
	if again != nil {
		for k, cmd := range s.exec(ctx, evals) {
			cmds[again[k]] = cmd
		}
	}
	for i, c := range batch {
		switch cmd := cmds[i].(type) {
		case *redis.MapStringStringCmd:
			c.hash, c.err = cmd.Val(), cmd.Err()
		case *redis.StringSliceCmd:
			c.values, c.err = cmd.Val(), cmd.Err()
		case noRetry:
			c.err = notFound(reply(c, cmd.Cmd))
		}
		close(c.done)
	}

	q.mu.Lock()
	q.sending--
	next := q.take()
	q.mu.Unlock()
	if next != nil {
		s.calls.Add(1)
		go func() {
			defer s.calls.Done()
			s.send(ctx, q, next)
		}()
	}
}

// noRetry is a command that go-redis does not send again when an attempt
// fails (it retries commands that fail on the network, even after the
// server ran them): an Apply must not be applied twice, so a write whose
// reply is lost returns the error instead.
type noRetry struct{ *redis.Cmd }

func (noRetry) NoRetry() bool { return true }

// exec runs the command of each call of batch, one pipeline for many.
func (s *Store) exec(ctx context.Context, batch []*call) []redis.Cmder {
	cmds := make([]redis.Cmder, len(batch))
	for i, c := range batch {
		switch c.args[0] {
		case "hgetall":
			cmds[i] = redis.NewMapStringStringCmd(ctx, c.args...)
		case "hmget":
			cmds[i] = redis.NewStringSliceCmd(ctx, c.args...)
		default:
			cmds[i] = noRetry{redis.NewCmd(ctx, c.args...)}
		}
	}
	if len(cmds) == 1 {
		_ = s.client.Process(ctx, cmds[0]) // the command holds its error
	} else {
		_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error { // each command holds its error
			for _, cmd := range cmds {
				_ = p.Process(ctx, cmd)
			}
			return nil
		})
	}
	return cmds
}
