package main

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"
	"github.com/livectx/livectx/store"
)

// countingStore counts the calls that reach a store, to prove that a
// refused client made none.
type countingStore struct {
	store.ContextStore
	loads, writes atomic.Int64
}

func (s *countingStore) Load(ctx context.Context, id string) (store.Record, error) {
	s.loads.Add(1)
	return s.ContextStore.Load(ctx, id)
}

func (s *countingStore) Apply(ctx context.Context, id string, c store.Change) (uint64, error) {
	s.writes.Add(1)
	return s.ContextStore.Apply(ctx, id, c)
}

func (s *countingStore) Delete(ctx context.Context, id string) error {
	s.writes.Add(1)
	return s.ContextStore.Delete(ctx, id)
}

func (s *countingStore) calls() int64 { return s.loads.Load() + s.writes.Load() }

// hostile is a server on a counting store, and a victim page with state.
type hostile struct {
	t      *testing.T
	st     *countingStore
	base   string
	victim page
}

func newHostile(t *testing.T) *hostile {
	st := &countingStore{ContextStore: newMemory(t)}
	h := &hostile{t: t, st: st, base: startServer(t, st, "A")}
	h.victim = loadPage(t, h.base, nil)
	c := dial(t, h.victim)
	c.join(h.victim, 0)
	c.click("inc")
	c.ws.Close(websocket.StatusNormalClosure, "")
	return h
}

// alive checks that the server still serves a new page, and the victim's
// page still holds its state.
func (h *hostile) alive() {
	h.t.Helper()
	p := loadPage(h.t, h.base, nil)
	c := dial(h.t, p)
	c.join(p, 0)
	if c.click("inc"); c.text("count") != "1" {
		h.t.Errorf("a new page after the attack counts %q, want 1", c.text("count"))
	}
	v := dial(h.t, h.victim)
	v.join(h.victim, 1)
	if v.text("count") != "1" {
		h.t.Errorf("the victim's page holds count %q after the attack, want 1", v.text("count"))
	}
}

func TestHostileClientsAreRefusedBeforeTheStore(t *testing.T) {
	h := newHostile(t)
	attacker := loadPage(t, h.base, nil) // the attacker's own session and page
	otherPage := loadPage(t, h.base, h.victim.jar)

	t.Run("the websocket is refused", func(t *testing.T) {
		noCookie := h.victim
		noCookie.jar, _ = cookiejar.New(nil)
		attackerCSRF := attacker.csrf
		for _, tc := range []struct {
			name string
			p    page
			o    dialOpts
		}{
			{"from another origin", h.victim, dialOpts{origin: "http://evil.example"}},
			{"from another port of the host", h.victim, dialOpts{origin: "http://127.0.0.1:1"}},
			{"without an Origin", h.victim, dialOpts{noOrigin: true}},
			{"with another session's CSRF token", h.victim, dialOpts{csrf: &attackerCSRF}},
			{"with the victim's CSRF token but no session cookie", noCookie, dialOpts{}},
			{"with another serializer version", h.victim, dialOpts{vsn: "1.0.0"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := h.st.calls()
				c, resp, err := tryDial(tc.p, tc.o)
				if err == nil {
					c.ws.CloseNow()
					t.Fatal("the websocket was accepted")
				}
				if resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Errorf("refused with %v, want 403", resp)
				}
				if n := h.st.calls() - before; n != 0 {
					t.Errorf("%d store calls", n)
				}
			})
		}
	})

	t.Run("the join is refused", func(t *testing.T) {
		id := strings.TrimPrefix(h.victim.elemID, elementPrefix)
		flipped := []byte(h.victim.session)
		flipped[len(flipped)/2] ^= 1
		for _, tc := range []struct {
			name, topic, session string
			csrf                 string
			conn                 page // whose connection joins
		}{
			{"a forged token", h.victim.topic(), "forged", h.victim.csrf, h.victim},
			{"a tampered token", h.victim.topic(), string(flipped), h.victim.csrf, h.victim},
			{"another page's token for this page's topic", h.victim.topic(), otherPage.session, h.victim.csrf, h.victim},
			{"the victim's token from another session", h.victim.topic(), h.victim.session, attacker.csrf, attacker},
			{"a client-chosen id", "lv:" + elementPrefix + "chosen-by-the-client", "chosen-by-the-client", h.victim.csrf, h.victim},
			{"the bare instance id as the token", h.victim.topic(), id, h.victim.csrf, h.victim},
			{"a join whose CSRF param is not the connection's", h.victim.topic(), h.victim.session, "wrong", h.victim},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := dial(t, tc.conn)
				before := h.st.calls()
				payload := joinPayloadOf(tc.conn, 0)
				payload["session"] = tc.session
				payload["params"].(map[string]any)["_csrf_token"] = tc.csrf
				status, resp := c.tryJoin(tc.topic, payload)
				if status != "error" {
					t.Fatalf("join: %s %v, want an error", status, resp)
				}
				if n := h.st.calls() - before; n != 0 {
					t.Errorf("%d store calls before the refusal", n)
				}
			})
		}
	})

	t.Run("malformed and oversized frames close the connection", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			frame []byte
			typ   websocket.MessageType
		}{
			{"not JSON", []byte("hello"), websocket.MessageText},
			{"an object", []byte(`{"topic":"phoenix"}`), websocket.MessageText},
			{"a short array", []byte(`[null,"1","phoenix"]`), websocket.MessageText},
			{"a payload that is not an object", []byte(`[null,"1","phoenix","heartbeat","x"]`), websocket.MessageText},
			{"a topic that is not a string", []byte(`[null,"1",7,"heartbeat",{}]`), websocket.MessageText},
			{"a binary frame", []byte{0, 1, 2}, websocket.MessageBinary},
			{"a frame over the limit", []byte(`[null,"1","phoenix","heartbeat",{"x":"` + strings.Repeat("x", maxFrame) + `"}]`), websocket.MessageText},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := dial(t, h.victim)
				before := h.st.calls()
				c.ws.Write(context.Background(), tc.typ, tc.frame)
				if f, err := c.read(); err == nil {
					t.Fatalf("the server answered %+v %s", f, f.Payload)
				} else if s := websocket.CloseStatus(err); s != websocket.StatusUnsupportedData && s != websocket.StatusMessageTooBig {
					t.Errorf("closed with %v (%v), want 1003 or 1009", s, err)
				}
				if n := h.st.calls() - before; n != 0 {
					t.Errorf("%d store calls", n)
				}
			})
		}
	})

	t.Run("unknown events and topics are answered with an error", func(t *testing.T) {
		c := dial(t, h.victim)
		c.join(h.victim, 1)
		writes := h.st.writes.Load()
		for _, tc := range []struct{ topic, event string }{
			{c.topic, "event"}, // an event the page has no handler for
			{"lv:phx-elsewhere", "event"},
			{c.topic, "phx_unknown"},
			{"phoenix", "phx_unknown"},
		} {
			status, resp := c.call(tc.topic, tc.event, map[string]any{"type": "click", "event": "rm -rf", "value": map[string]any{}})
			if status != "error" {
				t.Errorf("%s %s: %s %v, want an error", tc.topic, tc.event, status, resp)
			}
		}
		if n := h.st.writes.Load() - writes; n != 0 {
			t.Errorf("%d store writes", n)
		}
		if c.click("inc"); c.text("count") != "2" {
			t.Errorf("after the unknown events the page counts %q, want 2", c.text("count"))
		}
		c.click("dec")
	})

	h.alive()
}

// TestTenThousandJoinsWithoutEventsWriteNothing floods the server with page
// views that join and leave without an event: the store receives no write.
func TestTenThousandJoinsWithoutEventsWriteNothing(t *testing.T) {
	joins := 10_000
	if testing.Short() {
		joins = 1_000
	}
	h := newHostile(t)
	writes := h.st.writes.Load()
	const workers = 8
	var wg sync.WaitGroup
	var refused atomic.Int64
	for w := range workers {
		wg.Go(func() {
			jar, _ := cookiejar.New(nil)
			var c *client
			for i := w; i < joins; i += workers {
				p := loadPage(t, h.base, jar)
				if c == nil || i%(workers*100) == w {
					if c != nil {
						c.ws.Close(websocket.StatusNormalClosure, "")
					}
					c = dial(t, p)
				}
				if status, _ := c.tryJoin(p.topic(), joinPayloadOf(p, 0)); status != "ok" {
					refused.Add(1)
					continue
				}
				if status, _ := c.call(p.topic(), "phx_leave", map[string]any{}); status != "ok" {
					t.Errorf("leave: %s", status)
				}
			}
			c.ws.Close(websocket.StatusNormalClosure, "")
		})
	}
	wg.Wait()
	n := h.st.writes.Load() - writes
	t.Logf("%d page views joined and left (%d refused): %d store writes", joins, refused.Load(), n)
	if n != 0 {
		t.Errorf("%d store writes for %d joins without events, want 0", n, joins)
	}
	h.alive()
}
