package redisstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefixScan is how many keys Prefixes scans on each server when
// given zero or less.
const DefaultPrefixScan = 10000

// maxPrefixesChecked bounds the candidate prefixes Prefixes checks.
const maxPrefixesChecked = 100

// Prefixes returns, sorted, the key prefixes under which livectx records lie
// among the first maxKeys keys (zero or less: DefaultPrefixScan) that SCAN,
// never KEYS, meets on each server (each master of a Cluster). A key's
// prefix is what it holds up to its last ':' (escaped ids hold none), and
// the prefix counts when one of its keys is a hash whose "" field holds a
// record's version. It is a sample, not a census: it is for tools that tell
// a user who gave a wrong prefix where the records are.
func (s *Store) Prefixes(ctx context.Context, maxKeys int) ([]string, error) {
	if maxKeys <= 0 {
		maxKeys = DefaultPrefixScan
	}
	var found []string
	err := s.run(ctx, func(ctx context.Context) error {
		nodes, err := s.nodes(ctx)
		if err != nil {
			return err
		}
		samples := map[string]string{} // prefix -> one of its keys
		for _, n := range nodes {
			if err := scanPrefixes(ctx, n.client, maxKeys, samples); err != nil {
				return err
			}
		}
		found, err = s.recordPrefixes(ctx, samples)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: prefixes: %w", err)
	}
	return found, nil
}

// scanPrefixes adds to samples the prefixes of the keys holding a ':' among
// about the first maxKeys keys on c (SCAN's COUNT is a hint), with one key
// of each.
func scanPrefixes(ctx context.Context, c redis.Cmdable, maxKeys int, samples map[string]string) error {
	var cursor uint64
	for examined := 0; examined < maxKeys && len(samples) < maxPrefixesChecked; {
		count := min(maxKeys-examined, 1000)
		keys, next, err := c.Scan(ctx, cursor, "*:*", int64(count)).Result()
		if err != nil {
			return err
		}
		examined += count
		for _, k := range keys {
			if i := strings.LastIndexByte(k, ':'); i >= 0 && len(samples) < maxPrefixesChecked {
				if _, ok := samples[k[:i+1]]; !ok {
					samples[k[:i+1]] = k
				}
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	return nil
}

// recordPrefixes returns the prefixes whose sample key is a record, in one
// pipeline.
func (s *Store) recordPrefixes(ctx context.Context, samples map[string]string) ([]string, error) {
	if len(samples) == 0 {
		return nil, nil
	}
	prefixes := slices.Sorted(maps.Keys(samples))
	cmds := make([]*redis.StringCmd, len(prefixes))
	// The pipeline's error is its first command's, checked below.
	_, _ = s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, pfx := range prefixes {
			cmds[i] = p.HGet(ctx, samples[pfx], "")
		}
		return nil
	})
	var found []string
	for i, pfx := range prefixes {
		meta, err := cmds[i].Result()
		var reply redis.Error
		switch {
		case errors.As(err, &reply):
			continue // no such field (redis.Nil) or not a hash: not a record
		case err != nil:
			return nil, err
		}
		v, _, _ := strings.Cut(meta, " ")
		if _, err := strconv.ParseUint(v, 10, 64); err == nil {
			found = append(found, pfx)
		}
	}
	return found, nil
}
