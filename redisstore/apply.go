package redisstore

import (
	"context"
	"errors"
	"fmt"

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
	w := &call{args: s.applyArgs(s.key(id), c, ctx.Done() != nil), done: make(chan struct{})}
	err := s.submit(ctx, &s.writes, w)
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

// reply reads the script's reply from cmd into w: the new version, or
// {status, n} (see apply.lua).
func reply(w *call, cmd *redis.Cmd) error {
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
