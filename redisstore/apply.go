package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/livectx/livectx/store"
)

// Apply writes c to the record under id atomically and returns its new
// version; see store.ContextStore. A missing or expired record is created
// at version 1. When Apply returns an error of ctx or of the network, the
// change may or may not have been applied (go-redis does not send it again:
// see the package comment); a version conflict, a size cap or an invalid
// change writes nothing. Apply does not keep c's bytes.
func (s *Store) Apply(ctx context.Context, id string, c store.Change) (uint64, error) {
	if err := s.cfg.CheckChange(id, c); err != nil {
		return 0, fmt.Errorf("redisstore: apply %q: %w", id, err)
	}
	// A write can outlive Apply when ctx ends first; it must not read c's
	// bytes after Apply returned.
	w := &write{args: s.applyArgs(s.key(id), c, ctx.Done() != nil), done: make(chan struct{})}
	err := s.submit(ctx, w)
	if err == nil {
		err = w.err
	}
	if err != nil {
		return 0, fmt.Errorf("redisstore: apply %q: %w", id, err)
	}
	switch w.status {
	case 1:
		return uint64(w.n), nil
	case 2:
		err = store.VersionConflict(uint64(w.n), c.IfVersion)
	case 3:
		err = s.cfg.CheckRecordSize(int(w.n))
	case 4:
		err = &store.CorruptError{ID: id, Err: errors.New("key holds a hash that is not a record")}
	}
	return 0, fmt.Errorf("redisstore: apply %q: %w", id, err)
}

// applyArgs returns the command that runs the script on key for c:
// EVALSHA, its digest, the key and the script's ARGV (see apply.lua).
// copyValues copies the values, for a write that may outlive Apply.
func (s *Store) applyArgs(key string, c store.Change, copyValues bool) []any {
	args := make([]any, 0, 4+5+2*len(c.Set)+len(c.Delete))
	args = append(args, "evalsha", applySHA, 1, key)
	expect := ""
	if c.CheckVersion {
		expect = strconv.FormatUint(c.IfVersion, 10)
	}
	replace := "0"
	if c.Replace {
		replace = "1"
	}
	args = append(args, expect, replace, s.ttlArg, s.maxRec, len(c.Set))
	for k, v := range c.Set {
		if copyValues {
			args = append(args, k, string(v))
		} else {
			args = append(args, k, v)
		}
	}
	if len(c.Delete) == 1 {
		return append(args, c.Delete[0])
	}
	seen := make(map[string]bool, len(c.Delete))
	for _, k := range c.Delete {
		if !seen[k] { // the script counts each deleted field once
			seen[k] = true
			args = append(args, k)
		}
	}
	return args
}

// A write is one Apply on its way to the server.
type write struct {
	args []any // the command (see applyArgs)
	// Set before done is closed: the script's reply, or the error that
	// kept it from the caller.
	status, n int64
	err       error
	done      chan struct{}
}

// Each write is one EVALSHA that go-redis never sends twice (see noRetry).
// Writes that arrive while maxSending calls are in flight wait, and go
// together in the next call's pipeline (go-redis splits it among the nodes
// of a Cluster), so that under load a server reads, parses and answers many
// writes per round trip instead of one.
const (
	maxSending = 2
	maxBatch   = 128
)

// submit sends w and waits for its reply. It returns early when ctx ends:
// with ctx's error, and w is then either never sent or, when it was taken
// into a call already, perhaps applied.
func (s *Store) submit(ctx context.Context, w *write) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.calls.Done()
	if err := ctx.Err(); err != nil {
		return err
	}

	s.qmu.Lock()
	s.queue = append(s.queue, w)
	batch := s.take()
	s.qmu.Unlock()
	if batch != nil {
		if ctx.Done() == nil {
			s.send(ctx, batch) // nothing to return early for
		} else {
			s.calls.Add(1)
			go func() {
				defer s.calls.Done()
				s.send(ctx, batch)
			}()
		}
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
	}
	s.qmu.Lock()
	if i := slices.Index(s.queue, w); i >= 0 {
		s.queue = slices.Delete(s.queue, i, i+1)
		s.qmu.Unlock()
		return ctx.Err() // never sent
	}
	s.qmu.Unlock()
	select {
	case <-w.done: // it finished too: its reply is the truth
		return nil
	default:
		return ctx.Err()
	}
}

// take returns the writes for the next call, or nil when there are none or
// enough calls are in flight. s.qmu must be held.
func (s *Store) take() []*write {
	if len(s.queue) == 0 || s.sending >= maxSending {
		return nil
	}
	n := min(len(s.queue), maxBatch)
	// The batch keeps the front of the queue's array; capped, so that the
	// queue's later appends go past it.
	batch := s.queue[:n:n]
	s.queue = s.queue[n:]
	s.sending++
	return batch
}

// send runs the writes of batch, hands each its reply, then starts the
// next batch if writes are waiting. ctx is the context of the write that
// started the batch; only its values are kept, so that one caller giving up
// does not fail the others' writes (go-redis's timeouts bound the call).
func (s *Store) send(ctx context.Context, batch []*write) {
	ctx = context.WithoutCancel(ctx)
	cmds := s.exec(ctx, batch)
	// A server that lost its script cache ran none of those scripts: send
	// them again with the source, which EVAL also caches.
	var again []int
	var evals []*write
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			batch[i].args[0], batch[i].args[1] = "eval", applySource
			again, evals = append(again, i), append(evals, batch[i])
		}
	}
	if again != nil {
		for k, cmd := range s.exec(ctx, evals) {
			cmds[again[k]] = cmd
		}
	}
	for i, w := range batch {
		w.err = notFound(reply(w, cmds[i]))
		close(w.done)
	}

	s.qmu.Lock()
	s.sending--
	next := s.take()
	s.qmu.Unlock()
	if next != nil {
		s.calls.Add(1)
		go func() {
			defer s.calls.Done()
			s.send(ctx, next)
		}()
	}
}

// noRetry is a command that go-redis does not send again when an attempt
// fails (it retries commands that fail on the network, even after the
// server ran them): an Apply must not be applied twice, so a write whose
// reply is lost returns the error instead.
type noRetry struct{ *redis.Cmd }

func (noRetry) NoRetry() bool { return true }

// exec runs the command of each write of batch, one pipeline for many.
func (s *Store) exec(ctx context.Context, batch []*write) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(batch))
	for i, w := range batch {
		cmds[i] = redis.NewCmd(ctx, w.args...)
	}
	if len(cmds) == 1 {
		_ = s.client.Process(ctx, noRetry{cmds[0]}) // the command holds its error
		return cmds
	}
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error { // each command holds its error
		for _, cmd := range cmds {
			_ = p.Process(ctx, noRetry{cmd})
		}
		return nil
	})
	return cmds
}

// reply reads the script's reply from cmd into w: the new version, or
// {status, n} (see apply.lua).
func reply(w *write, cmd *redis.Cmd) error {
	res, err := cmd.Result()
	if err != nil {
		return err
	}
	switch r := res.(type) {
	case int64:
		w.status, w.n = 1, r
		return nil
	case []any:
		if len(r) == 2 {
			status, ok1 := r[0].(int64)
			n, ok2 := r[1].(int64)
			if ok1 && ok2 && 2 <= status && status <= 4 {
				w.status, w.n = status, n
				return nil
			}
		}
	}
	return fmt.Errorf("unexpected script reply %v", res)
}
