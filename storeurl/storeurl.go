// Package storeurl opens a livectx ContextStore from a URL, so that servers
// and tools take their store from a flag or an environment variable.
//
// The forms (Forms lists them):
//
//	memory://[?max_bytes=N]
//	bolt:///abs/path/file.db[?bucket=NAME]     (bolt://rel/path.db is relative)
//	redis://[user:pass@]host[:port][/db][?prefix=P]
//	rediss://...                               (the same over TLS)
//	redis+cluster://[user:pass@]h1:p1,h2:p2[?prefix=P]
//	redis+sentinel://[user:pass@]h1:p1,h2:p2[/db]?master=NAME[&prefix=P][&sentinel_password=S]
//
// rediss+cluster:// and rediss+sentinel:// use TLS. Every form takes ttl= (a
// Go duration such as 30m; records expire that long after their last write,
// default never), max_field= and max_record= (size caps in bytes, defaults
// store.DefaultMaxFieldSize and store.DefaultMaxRecordSize). The Redis port
// defaults to 6379 (26379 for Sentinel), the database to 0, the prefix to
// redisstore.DefaultPrefix, the bucket to boltstore.DefaultBucket.
//
// An unknown scheme or parameter, or a bad value, is an error that says what
// is wrong and lists the forms. Passwords never appear in errors.
//
// Open creates what the URL names if needed (a bolt file, its bucket). A
// tool that inspects what an application stored opens it with Existing, and
// ReadOnly when it only reads.
package storeurl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/livectx/livectx/boltstore"
	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/redisstore"
	"github.com/livectx/livectx/store"
)

// Forms lists the URL forms Open accepts, as error messages show them.
const Forms = "memory://[?max_bytes=N], bolt:///path/to/file.db[?bucket=NAME], " +
	"redis://[user:pass@]host[:port][/db][?prefix=P] (rediss:// for TLS), " +
	"redis+cluster://h1:p1,h2:p2[?prefix=P], " +
	"redis+sentinel://h1:p1,h2:p2[/db]?master=NAME[&prefix=P]; " +
	"all take ttl=DURATION, max_field=BYTES, max_record=BYTES"

// Default ports of the Redis forms.
const (
	DefaultRedisPort    = "6379"
	DefaultSentinelPort = "26379"
)

// ErrNoStore is returned by Open with Existing when the URL names no store
// that holds records; the error wrapping it says why and what to try.
var ErrNoStore = errors.New("storeurl: no store there")

// An OpenOption changes how Open opens a store.
type OpenOption func(*openConfig)

type openConfig struct {
	existing bool
	readOnly bool
}

// Existing makes Open find the store an application wrote rather than
// create one, for tools that inspect it. Open fails with ErrNoStore, and
// says why, for memory:// (a memory store lives in the process that made
// it: no other can see it), a bolt file that is missing (it is not
// created) or holds no store under the bucket (the error names the buckets
// it holds; none is created), and a Redis prefix under which the server
// holds no record (the error names the prefixes under which a bounded SCAN
// found records).
func Existing() OpenOption { return func(c *openConfig) { c.existing = true } }

// ReadOnly opens a bolt file for reading only (boltstore.WithReadOnly, which
// creates nothing either): a tool that reads leaves the file byte for byte
// as it was, and a write fails with boltstore.ErrReadOnly. The other forms
// have no read-only mode and ignore it; Load, List and TTL write nothing on
// Redis.
func ReadOnly() OpenOption { return func(c *openConfig) { c.readOnly = true } }

// Open opens the store rawURL names (see the package doc). The returned
// store owns what Open created: closing it closes the bbolt file or the Redis
// client. For the Redis forms Open pings the server with ctx, so a wrong
// address fails here rather than at the first request.
func Open(ctx context.Context, rawURL string, opts ...OpenOption) (store.ContextStore, error) {
	var oc openConfig
	for _, o := range opts {
		o(&oc)
	}
	sp, err := parse(rawURL)
	if err != nil {
		return nil, err
	}
	switch sp.kind {
	case kindMemory:
		if oc.existing {
			return nil, fmt.Errorf("%w at %s: a memory store lives in the process that made it, "+
				"no other process can inspect it; give the application a bolt:// or redis:// store to inspect", ErrNoStore, sp.redacted)
		}
		return sp.openMemory(), nil
	case kindBolt:
		return sp.openBolt(oc)
	}
	return sp.openRedis(ctx, oc)
}

func (sp *spec) openMemory() store.ContextStore {
	opts := store.OptionsFor[memory.Option](sp.options())
	if sp.maxBytes > 0 {
		opts = append(opts, memory.WithMaxBytes(sp.maxBytes))
	}
	return memory.New(opts...)
}

func (sp *spec) openBolt(oc openConfig) (store.ContextStore, error) {
	opts := store.OptionsFor[boltstore.Option](sp.options())
	if sp.bucket != "" {
		opts = append(opts, boltstore.WithBucket(sp.bucket))
	}
	if oc.existing {
		opts = append(opts, boltstore.WithNoCreate())
	}
	if oc.readOnly {
		opts = append(opts, boltstore.WithReadOnly())
	}
	s, err := boltstore.Open(sp.path, opts...)
	mustExist := oc.existing || oc.readOnly
	switch {
	case mustExist && errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w at %s: no file %q (bolt://rel/path.db is relative to the working directory, bolt:///abs/path.db absolute): %w",
			ErrNoStore, sp.redacted, sp.path, err)
	case errors.Is(err, boltstore.ErrNoBucket):
		return nil, fmt.Errorf("%w at %s: %w; pass ?bucket=NAME", ErrNoStore, sp.redacted, err)
	case err != nil:
		return nil, fmt.Errorf("storeurl: %s: %w", sp.redacted, err)
	}
	return s, nil
}

func (sp *spec) openRedis(ctx context.Context, oc openConfig) (store.ContextStore, error) {
	opts := store.OptionsFor[redisstore.Option](sp.options())
	if sp.prefix != "" {
		opts = append(opts, redisstore.WithPrefix(sp.prefix))
	}
	client := sp.redisClient()
	s, err := redisstore.New(client, opts...)
	if err == nil {
		err = client.Ping(ctx).Err()
	}
	if err != nil {
		err = fmt.Errorf("storeurl: %s: %w", sp.redacted, err)
	} else if oc.existing {
		err = sp.holdsRecords(ctx, s)
	}
	if err != nil {
		if s != nil {
			s.Close()
		}
		client.Close()
		return nil, err
	}
	return &ownedRedis{Store: s, client: client}, nil
}

// holdsRecords returns ErrNoStore, with the prefixes that hold records,
// when no record lies under s's prefix.
func (sp *spec) holdsRecords(ctx context.Context, s *redisstore.Store) error {
	// A page of many ids: SCAN's COUNT follows the limit, and an empty
	// prefix makes List scan every key.
	ids, _, err := s.List(ctx, "", 1000)
	if err == nil && len(ids) > 0 {
		return nil
	}
	var found []string
	if err == nil {
		found, err = s.Prefixes(ctx, 0)
	}
	if err != nil {
		return fmt.Errorf("storeurl: %s: %w", sp.redacted, err)
	}
	hint := fmt.Sprintf("no prefix holds records among the first %d keys of each server", redisstore.DefaultPrefixScan)
	if len(found) > 0 {
		quoted := make([]string, len(found))
		for i, p := range found {
			quoted[i] = strconv.Quote(p)
		}
		hint = "records lie under " + strings.Join(quoted, ", ")
	}
	return fmt.Errorf("%w at %s: no record under the prefix %q (pass the application's as ?prefix=P); %s",
		ErrNoStore, sp.redacted, s.Prefix(), hint)
}

type kind int

const (
	kindMemory kind = iota
	kindBolt
	kindRedis
	kindCluster
	kindSentinel
)

// spec is a parsed store URL.
type spec struct {
	kind     kind
	redacted string // the URL without its password, for errors

	// shared options; zero means the store's default
	ttl       time.Duration
	maxField  int
	maxRecord int

	maxBytes int    // memory
	path     string // bolt
	bucket   string // bolt

	tls              bool // redis forms
	addrs            []string
	username         string
	password         string
	db               int
	prefix           string
	master           string // sentinel
	sentinelPassword string // sentinel
}

// params is which query parameters each kind accepts besides the shared ones.
var params = map[kind][]string{
	kindMemory:   {"max_bytes"},
	kindBolt:     {"bucket"},
	kindRedis:    {"prefix"},
	kindCluster:  {"prefix"},
	kindSentinel: {"prefix", "master", "sentinel_password"},
}

func parse(raw string) (*spec, error) {
	sp := &spec{redacted: redact(raw)}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("storeurl: %q: %s; forms: %s", sp.redacted, fmt.Sprintf(format, args...), Forms)
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fail("not a store URL (no \"://\")")
	}
	switch strings.ToLower(scheme) {
	case "memory":
		sp.kind = kindMemory
	case "bolt", "bbolt":
		sp.kind = kindBolt
	case "redis", "rediss":
		sp.kind = kindRedis
	case "redis+cluster", "rediss+cluster":
		sp.kind = kindCluster
	case "redis+sentinel", "rediss+sentinel":
		sp.kind = kindSentinel
	default:
		return nil, fail("unknown scheme %q", scheme)
	}
	sp.tls = strings.HasPrefix(strings.ToLower(scheme), "rediss")

	rest, frag, _ := strings.Cut(rest, "#")
	if frag != "" {
		return nil, fail("unexpected fragment #%s", frag)
	}
	rest, rawQuery, _ := strings.Cut(rest, "?")
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fail("query: %v", err)
	}
	if err := sp.shared(q); err != nil {
		return nil, fail("%v", err)
	}
	for name := range q {
		if !slices.Contains(params[sp.kind], name) {
			return nil, fail("unknown parameter %q for %s:// (it takes %s)", name, scheme,
				strings.Join(append(slices.Clone(params[sp.kind]), "ttl", "max_field", "max_record"), ", "))
		}
		if len(q[name]) > 1 {
			return nil, fail("parameter %q given %d times", name, len(q[name]))
		}
	}

	switch sp.kind {
	case kindMemory:
		if authority != "" || path != "" {
			return nil, fail("memory:// takes no host or path")
		}
		if v := q.Get("max_bytes"); v != "" {
			if sp.maxBytes, err = size("max_bytes", v); err != nil {
				return nil, fail("%v", err)
			}
		}
		return sp, nil
	case kindBolt:
		p, err := url.PathUnescape(authority + path)
		if err != nil {
			return nil, fail("path: %v", err)
		}
		if p == "" || p == "/" {
			return nil, fail("bolt:// needs a file path, as in bolt:///var/lib/app/livectx.db")
		}
		if strings.Contains(authority, "@") {
			return nil, fail("bolt:// takes no user or password")
		}
		sp.path = p
		if q.Has("bucket") && q.Get("bucket") == "" {
			return nil, fail("empty bucket")
		}
		sp.bucket = q.Get("bucket")
		return sp, nil
	}
	return sp, sp.parseRedis(scheme, authority, path, q, fail)
}

// shared reads ttl, max_field and max_record, removing them from q.
func (sp *spec) shared(q url.Values) error {
	if v, ok := take(q, "ttl"); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("ttl=%q: want a Go duration of zero or more, such as 30m or 12h", v)
		}
		sp.ttl = d
	}
	var err error
	if v, ok := take(q, "max_field"); ok {
		if sp.maxField, err = size("max_field", v); err != nil {
			return err
		}
	}
	if v, ok := take(q, "max_record"); ok {
		if sp.maxRecord, err = size("max_record", v); err != nil {
			return err
		}
	}
	return nil
}

// take removes name from q and returns its single value.
func take(q url.Values, name string) (string, bool) {
	vs, ok := q[name]
	delete(q, name)
	if !ok {
		return "", false
	}
	if len(vs) != 1 {
		return strings.Join(vs, ","), true // fails to parse: reported as given
	}
	return vs[0], true
}

func size(name, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive number of bytes", name, v)
	}
	return n, nil
}

func (sp *spec) parseRedis(scheme, authority, path string, q url.Values, fail func(string, ...any) error) error {
	if user, hosts, ok := strings.Cut(authority, "@"); ok {
		authority = hosts
		name, pass, hasPass := strings.Cut(user, ":")
		var err error
		if sp.username, err = url.PathUnescape(name); err != nil {
			return fail("user name: %v", err)
		}
		if hasPass {
			if sp.password, err = url.PathUnescape(pass); err != nil {
				return fail("password is not valid URL escaping")
			}
		}
	}
	if authority == "" {
		return fail("%s:// needs a host", scheme)
	}
	port := DefaultRedisPort
	if sp.kind == kindSentinel {
		port = DefaultSentinelPort
	}
	for _, h := range strings.Split(authority, ",") {
		addr, err := hostPort(h, port)
		if err != nil {
			return fail("%v", err)
		}
		sp.addrs = append(sp.addrs, addr)
	}
	if sp.kind == kindRedis && len(sp.addrs) > 1 {
		return fail("%s:// takes one host; use redis+cluster:// or redis+sentinel:// for several", scheme)
	}
	if db := strings.TrimPrefix(path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return fail("database %q: want a number of zero or more", db)
		}
		if sp.kind == kindCluster && n != 0 {
			return fail("a Redis Cluster has only database 0")
		}
		sp.db = n
	}
	sp.prefix = q.Get("prefix")
	if q.Has("prefix") && sp.prefix == "" {
		return fail("empty prefix")
	}
	if sp.kind == kindSentinel {
		sp.master = q.Get("master")
		if sp.master == "" {
			return fail("redis+sentinel:// needs master=NAME")
		}
		sp.sentinelPassword = q.Get("sentinel_password")
	}
	return nil
}

// hostPort checks one host[:port] and adds the default port.
func hostPort(h, defaultPort string) (string, error) {
	if h == "" {
		return "", errors.New("empty host in the host list")
	}
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		// No port (or a bracketed IPv6 address without one).
		host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), defaultPort
		if strings.ContainsAny(host, ":[]") && !strings.HasPrefix(h, "[") {
			return "", fmt.Errorf("host %q: %v", h, err)
		}
	}
	if host == "" {
		return "", fmt.Errorf("host %q: empty host name", h)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("host %q: port %q is not a number from 1 to 65535", h, port)
	}
	return net.JoinHostPort(host, port), nil
}

// options returns the shared store options the URL set.
func (sp *spec) options() []store.Option {
	var opts []store.Option
	if sp.ttl > 0 {
		opts = append(opts, store.WithTTL(sp.ttl))
	}
	if sp.maxField > 0 {
		opts = append(opts, store.WithMaxFieldSize(sp.maxField))
	}
	if sp.maxRecord > 0 {
		opts = append(opts, store.WithMaxRecordSize(sp.maxRecord))
	}
	return opts
}

// redisClient makes the client of a Redis form. It does no I/O.
func (sp *spec) redisClient() redis.UniversalClient {
	var tc *tls.Config
	if sp.tls {
		host, _, _ := net.SplitHostPort(sp.addrs[0])
		tc = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	}
	switch sp.kind {
	case kindCluster:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: sp.addrs, Username: sp.username, Password: sp.password, TLSConfig: tc,
		})
	case kindSentinel:
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: sp.master, SentinelAddrs: sp.addrs, SentinelPassword: sp.sentinelPassword,
			Username: sp.username, Password: sp.password, DB: sp.db, TLSConfig: tc,
		})
	}
	return redis.NewClient(&redis.Options{
		Addr: sp.addrs[0], Username: sp.username, Password: sp.password, DB: sp.db, TLSConfig: tc,
	})
}

// redact hides the password of a URL's user information.
func redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndexByte(rest[:end], '@')
	if at < 0 {
		return raw
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return raw
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// ownedRedis is a redisstore.Store that closes the client Open made for it.
type ownedRedis struct {
	*redisstore.Store
	client redis.UniversalClient
	close  sync.Once
}

var _ store.Lister = (*ownedRedis)(nil)

// Close closes the store, then the client. Later calls do nothing and
// return nil, as the store's own Close does.
func (s *ownedRedis) Close() error {
	var err error
	s.close.Do(func() {
		err = s.Store.Close()
		if cerr := s.client.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("storeurl: close redis client: %w", cerr)
		}
	})
	return err
}
