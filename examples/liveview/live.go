package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/livectx/livectx/socket"
)

// This file speaks the Phoenix channel protocol (serializer vsn 2.0.0) to
// the phoenix and phoenix_live_view browser clients over one websocket.
//
// Every frame is a JSON array [join_ref, ref, topic, event, payload]. The
// client sends "heartbeat" on the topic "phoenix" (every 30 s), and on the
// topic "lv:<element id>" of each view "phx_join", "event" and
// "phx_leave"; the server answers each with "phx_reply" carrying
// {"status": "ok"|"error", "response": {...}}, and may push "phx_error" to
// make the client rejoin the view.

const (
	// maxFrame is the largest frame the server reads; a larger one closes
	// the connection (the page's own frames are a few hundred bytes).
	maxFrame = 64 << 10
	// maxViews is how many views one connection may have joined at once.
	maxViews = 8
	// idleTimeout closes a connection that sent nothing, not even a
	// heartbeat, for this long (the client beats every 30 s).
	idleTimeout = 70 * time.Second
	// writeTimeout bounds one frame's write.
	writeTimeout = 10 * time.Second
)

// message is one protocol frame.
type message struct {
	JoinRef *string         // nil: JSON null
	Ref     *string         // nil: JSON null
	Topic   string          // "phoenix" or "lv:<element id>"
	Event   string          // "phx_join", "event", "heartbeat", "phx_reply", "diff"...
	Payload json.RawMessage // an object
}

// errFrame is a frame that is not a protocol message.
var errFrame = errors.New("liveview: malformed frame")

func (m message) MarshalJSON() ([]byte, error) {
	return json.Marshal([5]any{m.JoinRef, m.Ref, m.Topic, m.Event, m.Payload})
}

func (m *message) UnmarshalJSON(b []byte) error {
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil || len(parts) != 5 {
		return errFrame
	}
	if json.Unmarshal(parts[0], &m.JoinRef) != nil || json.Unmarshal(parts[1], &m.Ref) != nil ||
		json.Unmarshal(parts[2], &m.Topic) != nil || json.Unmarshal(parts[3], &m.Event) != nil {
		return errFrame
	}
	if len(parts[4]) == 0 || parts[4][0] != '{' {
		return errFrame
	}
	m.Payload = parts[4]
	return nil
}

// reply is a phx_reply payload.
type reply struct {
	Status   string `json:"status"`
	Response any    `json:"response"`
}

// joinPayload is what the client sends with phx_join.
type joinPayload struct {
	URL     string `json:"url"`
	Session string `json:"session"` // the page's data-phx-session
	Params  struct {
		CSRF   string `json:"_csrf_token"`
		Mounts int    `json:"_mounts"` // earlier successful joins of the view
	} `json:"params"`
}

// eventPayload is what the client sends with "event".
type eventPayload struct {
	Type  string          `json:"type"` // click, form, keyup...
	Event string          `json:"event"`
	Value json.RawMessage `json:"value"` // an object for clicks, a query string for forms
}

// view is a LiveView the connection has joined.
type view struct {
	joinRef *string
	sock    *socket.Socket[Page]
}

// conn is one client's websocket and the views it joined.
type conn struct {
	srv   *server
	ws    *websocket.Conn
	owner string // the session the connection belongs to
	csrf  string // the CSRF token the connection was opened with
	log   *slog.Logger
	views map[string]*view // by topic
}

// serve reads frames until the connection ends, answering each in turn: the
// events of a view run one at a time, in the order the client sent them.
func (c *conn) serve(ctx context.Context) {
	defer c.closeViews()
	c.ws.SetReadLimit(maxFrame)
	for {
		rctx, cancel := context.WithTimeout(ctx, idleTimeout)
		typ, b, err := c.ws.Read(rctx)
		cancel()
		if err != nil {
			return // closed, idle, or a frame over maxFrame
		}
		var m message
		if typ != websocket.MessageText || json.Unmarshal(b, &m) != nil {
			c.log.Debug("malformed frame; closing", "bytes", len(b))
			c.ws.Close(websocket.StatusUnsupportedData, "malformed frame")
			return
		}
		if err := c.handle(ctx, m); err != nil {
			c.log.Debug("connection ends", "err", err)
			return
		}
	}
}

// handle answers one message; an error ends the connection.
func (c *conn) handle(ctx context.Context, m message) error {
	if m.Topic == "phoenix" {
		if m.Event == "heartbeat" {
			return c.reply(ctx, m, "ok", struct{}{})
		}
		return c.reply(ctx, m, "error", map[string]string{"reason": "unknown event"})
	}
	v := c.views[m.Topic]
	switch {
	case m.Event == "phx_join":
		return c.join(ctx, m)
	case v == nil || !sameRef(v.joinRef, m.JoinRef):
		return c.reply(ctx, m, "error", map[string]string{"reason": "unmatched topic"})
	case m.Event == "event":
		return c.event(ctx, v, m)
	case m.Event == "phx_leave":
		c.leave(ctx, m.Topic)
		return c.reply(ctx, m, "ok", struct{}{})
	}
	return c.reply(ctx, m, "error", map[string]string{"reason": "unknown event"})
}

// join opens the view the client names: the page's session token says
// which instance it is and that this connection's owner may resume it.
func (c *conn) join(ctx context.Context, m message) error {
	refuse := func(reason string) error {
		return c.reply(ctx, m, "error", map[string]string{"reason": reason})
	}
	if _, ok := c.views[m.Topic]; ok {
		c.leave(ctx, m.Topic) // a rejoin on the same connection replaces the view
	}
	if len(c.views) >= maxViews {
		return refuse("too many views")
	}
	var p joinPayload
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		return refuse("malformed join")
	}
	if p.Params.CSRF != c.csrf {
		return refuse("unauthorized")
	}
	s, err := c.srv.open(ctx, m.Topic, p.Session, c.owner)
	if err != nil {
		if errors.Is(err, errUnauthorized) {
			c.log.Info("join refused", "topic", m.Topic, "err", err)
			return refuse("unauthorized")
		}
		c.log.Error("join failed", "topic", m.Topic, "err", err)
		return refuse("join failed")
	}
	var rendered map[string]any
	err = s.Event(ctx, func() error { return mount(s, c.srv.node) }, func(p Page, _ socket.Changed) error {
		rendered = pageView.Full(p)
		return nil
	})
	if err != nil {
		c.log.Error("mount failed", "id", s.ID(), "err", err)
		return refuse("join failed")
	}
	c.views[m.Topic] = &view{joinRef: m.JoinRef, sock: s}
	c.log.Info("joined", "id", s.ID(), "mounts", p.Params.Mounts, "resumed", s.Restored())
	return c.reply(ctx, m, "ok", map[string]any{"rendered": rendered})
}

// event runs one client event through the socket and replies with the
// diff of what it changed. If the store refuses the write (after the
// socket's own retries on a conflict), the view ends with phx_error, and
// the client rejoins: it then renders what the store holds, never a state
// the store does not have.
func (c *conn) event(ctx context.Context, v *view, m message) error {
	var p eventPayload
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		return c.reply(ctx, m, "error", map[string]string{"reason": "malformed event"})
	}
	var value formValue
	if p.Type == "form" {
		if err := json.Unmarshal(p.Value, &value); err != nil {
			return c.reply(ctx, m, "error", map[string]string{"reason": "malformed event"})
		}
	}
	var diff map[string]any
	handled := false
	err := v.sock.Event(ctx, func() error {
		if err := handle(v.sock, p.Event, value); err != nil {
			return err
		}
		handled = true
		return nil
	}, func(pg Page, changed socket.Changed) error {
		diff = pageView.Diff(pg, changed)
		return nil
	})
	switch {
	case err == nil:
		resp := map[string]any{}
		if diff != nil {
			resp["diff"] = diff
		}
		return c.reply(ctx, m, "ok", resp)
	case !handled:
		// The handler refused the event (unknown, or a bad value): nothing
		// was assigned, the view goes on.
		c.log.Info("event refused", "id", v.sock.ID(), "event", p.Event, "err", err)
		return c.reply(ctx, m, "error", map[string]string{"reason": "event refused"})
	}
	c.log.Error("event failed; the client will rejoin", "id", v.sock.ID(), "event", p.Event, "err", err)
	c.drop(m.Topic)
	if err := c.reply(ctx, m, "error", map[string]string{"reason": "event failed"}); err != nil {
		return err
	}
	return c.send(ctx, message{JoinRef: v.joinRef, Topic: m.Topic, Event: "phx_error", Payload: json.RawMessage("{}")})
}

// leave ends a view; its record stays in the store (KeepOnClose) for a
// rejoin, here or on another node.
func (c *conn) leave(ctx context.Context, topic string) {
	v := c.views[topic]
	delete(c.views, topic)
	if err := v.sock.Close(ctx); err != nil {
		c.log.Warn("close view", "id", v.sock.ID(), "err", err)
	}
}

// drop forgets a view without touching the store: its socket may hold
// assignments the store refused.
func (c *conn) drop(topic string) { delete(c.views, topic) }

// closeViews ends the connection's views when it closes.
func (c *conn) closeViews() {
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	for topic := range c.views {
		c.leave(ctx, topic)
	}
}

func (c *conn) reply(ctx context.Context, to message, status string, response any) error {
	p, err := json.Marshal(reply{Status: status, Response: response})
	if err != nil {
		return fmt.Errorf("liveview: encode reply: %w", err)
	}
	return c.send(ctx, message{JoinRef: to.JoinRef, Ref: to.Ref, Topic: to.Topic, Event: "phx_reply", Payload: p})
}

func (c *conn) send(ctx context.Context, m message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("liveview: encode message: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return c.ws.Write(wctx, websocket.MessageText, b)
}

func sameRef(a, b *string) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// topicID returns the instance id a topic names ("lv:phx-<id>").
func topicID(topic string) (string, bool) {
	return strings.CutPrefix(topic, "lv:"+elementPrefix)
}

// acceptLive upgrades a request to the LiveView websocket, after checking
// that it comes from a page of this site: the Origin must be this host, and
// the CSRF token must be the one issued to the request's session.
func (srv *server) acceptLive(w http.ResponseWriter, r *http.Request) {
	owner, err := srv.checkSocket(r)
	if err != nil {
		srv.log.Info("websocket refused", "err", err, "origin", r.Header.Get("Origin"))
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	ws, err := websocket.Accept(w, r, nil) // checks the Origin again, as its default
	if err != nil {
		return
	}
	c := &conn{
		srv:   srv,
		ws:    ws,
		owner: owner,
		csrf:  r.URL.Query().Get("_csrf_token"),
		log:   srv.log,
		views: make(map[string]*view),
	}
	c.serve(r.Context())
	ws.CloseNow()
}
