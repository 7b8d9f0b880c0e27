package socket_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/livectx/livectx/memory"
	"github.com/livectx/livectx/socket"
	"github.com/livectx/livectx/socket/sockettest"
	"github.com/livectx/livectx/token"
)

type notes struct {
	Text string `msgpack:"text"`
}

var textField = socket.FieldOf(func(n *notes) *string { return &n.Text })

var (
	liveKey    = bytes.Repeat([]byte("k"), token.MinKeySize)
	retiredKey = bytes.Repeat([]byte("r"), token.MinKeySize)
)

// tokenEnv is a Manager over a memory store seen through a Counter, a
// signer with a fake clock, and a record of alice's holding a secret.
type tokenEnv struct {
	mgr     *socket.Manager[notes]
	counter *sockettest.Counter
	signer  *token.Signer
	now     time.Time
	id, tok string // alice's instance and its token
}

func newTokenEnv(t *testing.T) *tokenEnv {
	t.Helper()
	st := memory.New()
	t.Cleanup(func() { st.Close() })
	e := &tokenEnv{counter: sockettest.Count(st), now: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	e.mgr = socket.NewManager[notes](socket.WithStore(e.counter), socket.KeepOnClose())
	var err error
	e.signer, err = token.NewSigner([][]byte{liveKey, retiredKey}, token.WithMaxAge(time.Hour), token.WithClock(func() time.Time { return e.now }))
	if err != nil {
		t.Fatal(err)
	}
	if e.id, e.tok, err = e.signer.Mint("alice"); err != nil {
		t.Fatal(err)
	}
	s, err := e.mgr.OpenToken(t.Context(), e.signer, e.tok, "alice", notes{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Event(t.Context(), func() error { return s.Assign(textField.Set("alice's secret")) }, func(notes, socket.Changed) error { return nil }); err != nil {
		t.Fatal(err)
	}
	s.Close(t.Context())
	e.counter.Reset()
	return e
}

func TestOpenTokenOpensTheInstanceItNames(t *testing.T) {
	e := newTokenEnv(t)
	e.now = e.now.Add(30 * time.Minute)
	fresh, err := e.signer.Sign(e.id, "alice") // re-issued on a page load
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{e.tok, fresh} {
		s, err := e.mgr.OpenToken(t.Context(), e.signer, tok, "alice", notes{})
		if err != nil {
			t.Fatal(err)
		}
		if s.ID() != e.id || !s.Restored() || textField.Get(s) != "alice's secret" {
			t.Errorf("OpenToken opened %q (restored %v, text %q), want %q restored with alice's text", s.ID(), s.Restored(), textField.Get(s), e.id)
		}
		s.Close(t.Context())
	}
}

// TestOpenTokenRefusesBadTokensBeforeTheStore tries every way to pass a
// token that was not issued for this owner, this id and now: each is
// refused with an error matching token.ErrInvalid, and no call reaches the
// store.
// badToken is a token an attacker presents, as owner.
type badToken struct{ name, tok, owner string }

// badTokens returns forged, damaged and misused variants of e's token.
func badTokens(t *testing.T, e *tokenEnv) []badToken {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(e.tok)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	var attempts []badToken
	add := func(name, tok, owner string) { attempts = append(attempts, badToken{name, tok, owner}) }

	forger, err := token.NewSigner([][]byte{bytes.Repeat([]byte("f"), token.MinKeySize)})
	if err != nil {
		t.Fatal(err)
	}
	forged, err := forger.Sign(e.id, "alice")
	if err != nil {
		t.Fatal(err)
	}
	add("a token forged with another key", forged, "alice")
	for i := range len(raw) * 8 {
		b := bytes.Clone(raw)
		b[i/8] ^= 1 << (i % 8)
		add("bit "+strconv.Itoa(i)+" flipped", enc(b), "alice")
	}
	for n := range len(e.tok) {
		add("truncated to "+strconv.Itoa(n)+" characters", e.tok[:n], "alice")
	}
	add("another owner's token", e.tok, "mallory")
	add("a client-chosen id as the token", e.id, "alice")
	add("a client-chosen id, new, as the token", "fixated-by-attacker", "alice")
	other, err := e.signer.Sign("page-of-bob", "alice")
	if err != nil {
		t.Fatal(err)
	}
	otherRaw, _ := base64.RawURLEncoding.DecodeString(other)
	add("a token for X with id Y spliced in", enc(append(append(bytes.Clone(raw[:9]), "page-of-bob"...), raw[len(raw)-32:]...)), "alice")
	add("a token for Y with X's MAC", enc(append(bytes.Clone(otherRaw[:len(otherRaw)-32]), raw[len(raw)-32:]...)), "alice")
	return attempts
}

func TestOpenTokenRefusesBadTokensBeforeTheStore(t *testing.T) {
	e := newTokenEnv(t)
	attempts := badTokens(t, e)
	for _, a := range attempts {
		s, err := e.mgr.OpenToken(t.Context(), e.signer, a.tok, a.owner, notes{})
		if !errors.Is(err, token.ErrInvalid) || s != nil {
			t.Errorf("%s: OpenToken = %v, %v; want token.ErrInvalid", a.name, s, err)
		}
	}
	t.Run("expired", func(t *testing.T) {
		e.now = e.now.Add(time.Hour + time.Second)
		defer func() { e.now = e.now.Add(-time.Hour - time.Second) }()
		if s, err := e.mgr.OpenToken(t.Context(), e.signer, e.tok, "alice", notes{}); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("an expired token: OpenToken = %v, %v; want token.ErrInvalid", s, err)
		}
	})
	t.Run("signed by a retired key", func(t *testing.T) {
		old, err := token.NewSigner([][]byte{retiredKey}, token.WithClock(func() time.Time { return e.now }))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := old.Sign(e.id, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.mgr.OpenToken(t.Context(), e.signer, tok, "alice", notes{}); err != nil {
			t.Fatalf("while the old key is listed: %v", err)
		}
		e.counter.Reset()
		current, err := token.NewSigner([][]byte{liveKey}) // the old key removed
		if err != nil {
			t.Fatal(err)
		}
		if s, err := e.mgr.OpenToken(t.Context(), current, tok, "alice", notes{}); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("a retired key's token: OpenToken = %v, %v; want token.ErrInvalid", s, err)
		}
	})
	if n := e.counter.Calls(); n != 0 {
		t.Errorf("refused tokens made %d store calls (%d loads), want none", n, e.counter.Loads())
	}
	if _, err := e.mgr.OpenToken(t.Context(), nil, e.tok, "alice", notes{}); err == nil || errors.Is(err, token.ErrInvalid) || e.counter.Calls() != 0 {
		t.Errorf("a nil signer: %v, %d store calls; want an error of its own and none", err, e.counter.Calls())
	}
}

// TestATokenForXOpensOnlyX: OpenToken takes no id, so a client cannot name
// another instance (splicing one into a token is refused above).
func TestATokenForXOpensOnlyX(t *testing.T) {
	e := newTokenEnv(t)
	s, err := e.mgr.OpenToken(t.Context(), e.signer, e.tok, "alice", notes{})
	if err != nil {
		t.Fatal(err)
	}
	if s.ID() != e.id || e.counter.Calls() != 1 {
		t.Errorf("OpenToken opened %q with %d store calls, want %q with one load", s.ID(), e.counter.Calls(), e.id)
	}
}

// TestAReplayAfterTheRecordWasDeleted: a token is not revoked by deleting
// the record. Its owner's replay opens a new context (nothing of the deleted
// one comes back) after one load, and viewing it writes nothing; anyone
// else's replay is refused before the store.
func TestAReplayAfterTheRecordWasDeleted(t *testing.T) {
	e := newTokenEnv(t)
	if err := e.mgr.Store().Delete(t.Context(), e.id); err != nil {
		t.Fatal(err)
	}
	e.counter.Reset()
	if s, err := e.mgr.OpenToken(t.Context(), e.signer, e.tok, "mallory", notes{}); !errors.Is(err, token.ErrInvalid) || e.counter.Calls() != 0 {
		t.Errorf("another owner's replay: OpenToken = %v, %v after %d store calls; want token.ErrInvalid and none", s, err, e.counter.Calls())
	}
	s, err := e.mgr.OpenToken(t.Context(), e.signer, e.tok, "alice", notes{Text: "new"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Render(t.Context(), func(notes, socket.Changed) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if s.Restored() || textField.Get(s) != "new" || e.counter.Loads() != 1 || e.counter.Applies() != 0 {
		t.Errorf("the owner's replay: restored %v, text %q, %d loads, %d writes; want a new context after one load and no write",
			s.Restored(), textField.Get(s), e.counter.Loads(), e.counter.Applies())
	}
}

func ExampleManager_OpenToken() {
	ctx := context.Background()
	views := socket.NewManager[notes]()
	defer views.Close()
	signer, err := token.NewSigner([][]byte{liveKey}) // keys from the environment, in a real server
	if err != nil {
		panic(err)
	}

	// First page view: the server mints the id; the browser gets the token.
	_, tok, err := signer.Mint("session-1")
	if err != nil {
		panic(err)
	}

	// The browser comes back with the token, in the same session.
	s, err := views.OpenToken(ctx, signer, tok, "session-1", notes{})
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Restored()) // a new page: nothing stored yet

	// Another session presents the same token: refused before the store.
	_, err = views.OpenToken(ctx, signer, tok, "session-2", notes{})
	fmt.Println(errors.Is(err, token.ErrInvalid))
	// Output:
	// false
	// true
}
