package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	fiberredis "github.com/gofiber/storage/redis/v3"
	"github.com/redis/go-redis/v9"

	"github.com/livectx/livectx/redisstore"
	"github.com/livectx/livectx/store"
)

// BenchmarkMountParts takes apart the one mount row where livectx trails a
// peer (Redis at 1 KiB, see README.md): the steps of a mount on each side,
// timed in turns as BenchmarkMount times its contenders.
//
//	get         GET of the context encoded whole, as fiber-redis stores it
//	peer        fiber-redis's mount: that GET, then msgpack.Unmarshal
//	hmget       HMGET of livectx's record by the names a socket asks for
//	            (the version field, the context's ten fields, the lease)
//	loadfields  redisstore's LoadFields of those names
//	livectx     a socket's mount: Manager.Open, which calls LoadFields
//
// Server runs them on the real Redis server. Client runs them over a
// connection that answers each command from memory with the reply the
// server gave it, so that it times the client's work alone (go-redis, the
// store, the decoding) without the round trip and the server's work; it
// refuses HELLO, as a server older than Redis 6 does, so both sides speak
// RESP2 there. Metrics: <part>-ns/op, <part>-B/op and
// <part>-allocs/op.
func BenchmarkMountParts(b *testing.B) {
	rc, prefix := redisClient(b)
	names, replies := seedParts(b, rc, prefix)
	b.Run("Server", func(b *testing.B) {
		inTurns(b, mountParts(b, rc, prefix, names))
	})
	b.Run("Client", func(b *testing.B) {
		replay := redis.NewClient(&redis.Options{
			Addr:            "replay",
			Protocol:        2,
			DisableIdentity: true,
			Dialer: func(context.Context, string, string) (net.Conn, error) {
				return &replayConn{replies: replies}, nil
			},
		})
		defer replay.Close()
		inTurns(b, mountParts(b, replay, prefix, names))
	})
}

// seedParts stores a 1 KiB context under prefix for both sides, and returns
// the names a socket asks LoadFields for and the server's replies to the
// parts' commands, by command name.
func seedParts(b *testing.B, rc *redis.Client, prefix string) (names []string, replies map[string][]byte) {
	ctx := context.Background()
	c := newCtx(1 << 10)
	st, p := sides(b, rc, prefix)
	rec := &namesOf{ContextStore: st}
	lx := newLivectx(rec)
	if err := errors.Join(lx.seed(ctx, "seeded", c), p.seed(ctx, "seeded", c)); err != nil {
		b.Fatal(err)
	}
	if _, err := lx.mount(ctx, "seeded"); err != nil {
		b.Fatal(err)
	}
	blob, err := rc.Get(ctx, prefix+"peer:seeded").Result()
	if err != nil {
		b.Fatal(err)
	}
	values, err := rc.HMGet(ctx, prefix+"seeded", append([]string{""}, rec.names...)...).Result()
	if err != nil || values[0] == nil {
		b.Fatalf("livectx's record is not at %q: %v", prefix+"seeded", err)
	}
	hmget := fmt.Appendf(nil, "*%d\r\n", len(values))
	for _, v := range values {
		if v == nil {
			hmget = append(hmget, "$-1\r\n"...)
		} else {
			hmget = appendBulk(hmget, v.(string))
		}
	}
	return rec.names, map[string][]byte{
		"hello": []byte("-ERR unknown command 'HELLO'\r\n"),
		"get":   appendBulk(nil, blob),
		"hmget": hmget,
	}
}

// mountParts returns BenchmarkMountParts' parts, run through rc on the
// records seedParts stored under prefix.
func mountParts(b *testing.B, rc *redis.Client, prefix string, names []string) []part {
	ctx := context.Background()
	st, p := sides(b, rc, prefix)
	lx := newLivectx(st)
	hmget := []any{"hmget", prefix + "seeded", ""}
	for _, name := range names {
		hmget = append(hmget, name)
	}
	return []part{
		{"get", func() error { return rc.Get(ctx, prefix+"peer:seeded").Err() }},
		{"peer", func() error { _, err := p.mount(ctx, "seeded"); return err }},
		{"hmget", func() error { return rc.Process(ctx, redis.NewStringSliceCmd(ctx, hmget...)) }},
		{"loadfields", func() error { _, _, err := st.LoadFields(ctx, "seeded", names); return err }},
		{"livectx", func() error { _, err := lx.mount(ctx, "seeded"); return err }},
	}
}

// sides returns livectx's Redis store and fiber-redis on rc, under prefix.
func sides(b *testing.B, rc *redis.Client, prefix string) (*redisstore.Store, *peer) {
	st, err := redisstore.New(rc, redisstore.WithPrefix(prefix), store.WithTTL(ttl))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st, &peer{blobs: fiberRedis{fiberredis.NewFromConnection(rc), prefix + "peer:"}}
}

// namesOf records the names of the last LoadFields.
type namesOf struct {
	store.ContextStore
	names []string
}

func (n *namesOf) LoadFields(ctx context.Context, id string, names []string) ([][]byte, store.Record, error) {
	n.names = slices.Clone(names)
	return n.ContextStore.(store.FieldLoader).LoadFields(ctx, id, names)
}

// replayConn is a connection to a Redis server that answers each command
// it is sent with the reply recorded for the command's name.
type replayConn struct {
	replies map[string][]byte // by lower-case name
	unread  []byte
}

func (c *replayConn) Write(b []byte) (int, error) {
	for rest := b; len(rest) > 0; {
		name, next, err := firstArg(rest)
		if err != nil {
			return 0, err
		}
		reply, ok := c.replies[string(bytes.ToLower(name))]
		if !ok {
			return 0, fmt.Errorf("replayConn: no reply recorded for %q", name)
		}
		c.unread, rest = append(c.unread, reply...), next
	}
	return len(b), nil
}

func (c *replayConn) Read(b []byte) (int, error) {
	if len(c.unread) == 0 {
		return 0, errors.New("replayConn: read with no reply pending")
	}
	n := copy(b, c.unread)
	c.unread = c.unread[n:]
	return n, nil
}

func (*replayConn) Close() error                     { return nil }
func (*replayConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (*replayConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (*replayConn) SetDeadline(time.Time) error      { return nil }
func (*replayConn) SetReadDeadline(time.Time) error  { return nil }
func (*replayConn) SetWriteDeadline(time.Time) error { return nil }

// firstArg returns the first argument of the command at the start of b (an
// array of bulk strings) and what follows the command.
func firstArg(b []byte) (first, rest []byte, err error) {
	n, b, err := header(b, '*')
	for i := 0; i < n && err == nil; i++ {
		var size int
		if size, b, err = header(b, '$'); err == nil && len(b) < size+2 {
			err = errors.New("replayConn: a command split across writes")
		}
		if err == nil {
			if i == 0 {
				first = b[:size]
			}
			b = b[size+2:]
		}
	}
	return first, b, err
}

// header reads the line "<kind><n>\r\n" at the start of b.
func header(b []byte, kind byte) (n int, rest []byte, err error) {
	line, rest, ok := bytes.Cut(b, []byte("\r\n"))
	if !ok || len(line) < 2 || line[0] != kind {
		return 0, nil, fmt.Errorf("replayConn: want %q, got %.20q", kind, b)
	}
	n, err = strconv.Atoi(string(line[1:]))
	return n, rest, err
}

// appendBulk appends s as a RESP bulk string.
func appendBulk(b []byte, s string) []byte {
	return append(fmt.Appendf(b, "$%d\r\n", len(s)), s+"\r\n"...)
}
