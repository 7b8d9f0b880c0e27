package token_test

import (
	"strings"
	"testing"
	"time"

	"github.com/livectx/livectx/store/storetest"
	"github.com/livectx/livectx/token"
)

// FuzzVerify feeds Verify any string as a token, for any owner: it must
// never panic, and it must accept only the tokens the signer minted, each
// for the owner it was minted for, returning the id it was minted with.
func FuzzVerify(f *testing.F) {
	clk := storetest.NewClock()
	s := newSigner(f, [][]byte{keyA, keyB}, token.WithClock(clk.Now), token.WithMaxAge(time.Hour))
	type grant struct{ id, owner string }
	minted := map[string]grant{}
	// Fixed ids, not Mint's random ones: every fuzzing process must agree
	// on what was minted.
	ids := []string{"MINTEDIDMINTEDIDMINTEDID26", strings.Repeat("x", token.MaxIDLen), "1"}
	for _, owner := range []string{"alice", "bob", "a", strings.Repeat("long owner ", 50)} {
		for _, id := range ids {
			minted[sign(f, s, id, owner)] = grant{id, owner}
		}
	}
	old := newSigner(f, [][]byte{keyB}, token.WithClock(clk.Now))
	minted[sign(f, old, ids[0], "alice")] = grant{ids[0], "alice"} // the second key verifies too
	for tok, g := range minted {
		f.Add(tok, g.owner)
		f.Add(tok, g.owner+"x")
		f.Add(tok[:len(tok)-1], g.owner)
		f.Add(tok+"A", g.owner)
	}
	f.Add("", "")
	f.Add("not a token", "alice")
	f.Add(strings.Repeat("A", 140), "alice")
	f.Fuzz(func(t *testing.T, tok, owner string) {
		id, err := s.Verify(tok, owner)
		if err != nil {
			if err != token.ErrInvalid || id != "" {
				t.Fatalf("Verify(%q, %q) = %q, %v; a refusal must be \"\", token.ErrInvalid", tok, owner, id, err)
			}
			return
		}
		g, ok := minted[tok]
		if !ok || g.owner != owner || g.id != id {
			t.Fatalf("Verify(%q, %q) accepted id %q: not a token minted for that owner", tok, owner, id)
		}
	})
}

// FuzzSignVerify signs any id for any owner and verifies the token: Verify
// returns the id exactly, and refuses the token for any other owner.
func FuzzSignVerify(f *testing.F) {
	s := newSigner(f, [][]byte{keyA})
	f.Add("page-1", "alice", "bob")
	f.Add("\x00\xff", "\x00", "\x00\x00")
	f.Fuzz(func(t *testing.T, id, owner, other string) {
		tok, err := s.Sign(id, owner)
		if err != nil {
			if id != "" && len(id) <= token.MaxIDLen && owner != "" {
				t.Fatalf("Sign(%q, %q): %v", id, owner, err)
			}
			return
		}
		if len(tok) >= 200 {
			t.Fatalf("Sign(%q, %q) made a token of %d bytes", id, owner, len(tok))
		}
		if got, err := s.Verify(tok, owner); err != nil || got != id {
			t.Fatalf("Verify(Sign(%q, %q)) = %q, %v", id, owner, got, err)
		}
		if other != owner {
			if got, err := s.Verify(tok, other); err != token.ErrInvalid {
				t.Fatalf("the token of %q verified for %q: %q, %v", owner, other, got, err)
			}
		}
	})
}
