package redisstore

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Limits of List.
const (
	DefaultListLimit = 100
	MaxListLimit     = 10000
)

// List returns up to limit ids (limit <= 0 means DefaultListLimit, more than
// MaxListLimit means MaxListLimit) from cursor ("" for the first page) and
// the next page's cursor, "" after the last; see store.Lister. It pages with
// SCAN (never KEYS) through every master of a Cluster (every shard of a
// Ring), one after the other. Cursors are opaque. A listing that spans a
// failover may miss the ids of the failed master.
func (s *Store) List(ctx context.Context, cursor string, limit int) ([]string, string, error) {
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	var ids []string
	var next string
	err := s.run(ctx, func(ctx context.Context) error {
		var err error
		ids, next, err = s.list(ctx, cursor, limit)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("redisstore: list: %w", err)
	}
	return ids, next, nil
}

func (s *Store) list(ctx context.Context, cursor string, limit int) ([]string, string, error) {
	nodes, err := s.nodes(ctx)
	if err != nil {
		return nil, "", err
	}
	var p position
	if cursor == "" {
		p.node = nodes[0].addr
	} else if p, err = parsePosition(cursor); err != nil {
		return nil, "", err
	}
	pattern := globEscape(s.prefix) + "*"
	ids := make([]string, 0, limit)
	for len(ids) < limit {
		if len(p.left) > 0 {
			if id, ok := s.idOf(s.prefix + p.left[0]); ok {
				ids = append(ids, id)
			}
			p.left = p.left[1:]
			continue
		}
		if p.done {
			i, _ := slices.BinarySearchFunc(nodes, p.node, func(n node, addr string) int { return strings.Compare(n.addr, addr) })
			if i < len(nodes) && nodes[i].addr == p.node {
				i++
			}
			if i == len(nodes) {
				return ids, "", nil
			}
			p = position{node: nodes[i].addr}
		}
		i := slices.IndexFunc(nodes, func(n node) bool { return n.addr == p.node })
		if i < 0 { // the node left the cluster: go on with the next one
			p.done = true
			continue
		}
		keys, cur, err := nodes[i].client.Scan(ctx, p.scan, pattern, int64(limit)).Result()
		if err != nil {
			return nil, "", err
		}
		p.scan, p.done = cur, cur == 0
		for _, k := range keys {
			if len(ids) < limit {
				if id, ok := s.idOf(k); ok {
					ids = append(ids, id)
				}
			} else {
				p.left = append(p.left, strings.TrimPrefix(k, s.prefix))
			}
		}
	}
	if p.done && len(p.left) == 0 && p.node == nodes[len(nodes)-1].addr {
		return ids, "", nil
	}
	return ids, p.String(), nil
}

// node is one server that List scans.
type node struct {
	addr   string // "" for a client that is not a Cluster or Ring
	client redis.Cmdable
}

// nodes returns the servers holding records, sorted by address.
func (s *Store) nodes(ctx context.Context) ([]node, error) {
	var mu sync.Mutex
	var nodes []node
	add := func(_ context.Context, c *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		nodes = append(nodes, node{addr: c.Options().Addr, client: c})
		return nil
	}
	var err error
	switch c := s.client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, add)
	case *redis.Ring:
		err = c.ForEachShard(ctx, add)
	default:
		return []node{{client: s.client}}, nil
	}
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, fmt.Errorf("no master to scan")
	}
	slices.SortFunc(nodes, func(a, b node) int { return strings.Compare(a.addr, b.addr) })
	return nodes, nil
}

// position is where a listing stands: the node being scanned, its SCAN
// cursor (done once SCAN returned 0), and the keys (without the prefix)
// SCAN returned beyond the last page's limit.
type position struct {
	node string
	scan uint64
	done bool
	left []string
}

// String encodes p as an opaque cursor.
func (p position) String() string {
	scan := strconv.FormatUint(p.scan, 10)
	if p.done {
		scan = "end"
	}
	lines := append([]string{scan, p.node}, p.left...)
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(lines, "\n")))
}

func parsePosition(cursor string) (position, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	lines := strings.Split(string(b), "\n")
	if err != nil || len(lines) < 2 {
		return position{}, fmt.Errorf("invalid cursor %q", cursor)
	}
	p := position{node: lines[1], left: lines[2:], done: lines[0] == "end"}
	if !p.done {
		if p.scan, err = strconv.ParseUint(lines[0], 10, 64); err != nil {
			return position{}, fmt.Errorf("invalid cursor %q", cursor)
		}
	}
	return p, nil
}

// globEscape escapes the characters that SCAN's MATCH pattern interprets.
func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
