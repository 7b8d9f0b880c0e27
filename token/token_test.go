package token_test

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/livectx/livectx/store/storetest"
	"github.com/livectx/livectx/token"
)

var (
	keyA = bytes.Repeat([]byte("a"), token.MinKeySize)
	keyB = bytes.Repeat([]byte("b"), token.MinKeySize)
	keyC = bytes.Repeat([]byte("c"), token.MinKeySize+16)
)

func newSigner(t testing.TB, keys [][]byte, opts ...token.Option) *token.Signer {
	t.Helper()
	s, err := token.NewSigner(keys, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mint(t testing.TB, s *token.Signer, owner string) (id, tok string) {
	t.Helper()
	id, tok, err := s.Mint(owner)
	if err != nil {
		t.Fatal(err)
	}
	return id, tok
}

func sign(t testing.TB, s *token.Signer, id, owner string) string {
	t.Helper()
	tok, err := s.Sign(id, owner)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// refused fails t unless Verify refuses tok for owner with exactly
// ErrInvalid (not merely an error wrapping it: no oracle).
func refused(t *testing.T, s *token.Signer, tok, owner, what string) {
	t.Helper()
	id, err := s.Verify(tok, owner)
	if err != token.ErrInvalid || id != "" {
		t.Errorf("%s: Verify = %q, %v; want \"\", token.ErrInvalid", what, id, err)
	}
}

func TestNewSignerRefusesBadConfiguration(t *testing.T) {
	cases := []struct {
		name string
		keys [][]byte
		opts []token.Option
	}{
		{"no keys", nil, nil},
		{"a key of 31 bytes", [][]byte{keyA, keyA[:31]}, nil},
		{"an empty key", [][]byte{{}}, nil},
		{"a zero max age", [][]byte{keyA}, []token.Option{token.WithMaxAge(0)}},
		{"a negative max age", [][]byte{keyA}, []token.Option{token.WithMaxAge(-time.Second)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if s, err := token.NewSigner(c.keys, c.opts...); err == nil || s != nil {
				t.Errorf("NewSigner = %v, %v; want an error", s, err)
			}
		})
	}
}

func TestNewSignerCopiesItsKeys(t *testing.T) {
	k := bytes.Clone(keyA)
	s := newSigner(t, [][]byte{k})
	id, tok := mint(t, s, "alice")
	k[0] ^= 1
	if got, err := s.Verify(tok, "alice"); err != nil || got != id {
		t.Errorf("after the caller changed its key slice: Verify = %q, %v", got, err)
	}
}

func TestMintedIDsAreRandomAndURLSafe(t *testing.T) {
	s := newSigner(t, [][]byte{keyA})
	seen := map[string]bool{}
	for range 1000 {
		id, tok := mint(t, s, "alice")
		// 26 base32 characters carry 130 bits.
		if len(id) != 26 || strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
			t.Fatalf("id %q: want 26 characters of base32 (at least 128 bits)", id)
		}
		if seen[id] {
			t.Fatalf("id %q minted twice", id)
		}
		seen[id] = true
		if strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("token %q is not URL-safe", tok)
		}
		if got, err := s.Verify(tok, "alice"); err != nil || got != id {
			t.Fatalf("Verify(Mint) = %q, %v; want %q", got, err, id)
		}
	}
}

func TestTokensAreSmall(t *testing.T) {
	s := newSigner(t, [][]byte{keyA})
	owner := strings.Repeat("o", 1000) // the owner is not carried
	_, minted := mint(t, s, owner)
	longest := sign(t, s, strings.Repeat("x", token.MaxIDLen), owner)
	t.Logf("a minted token has %d bytes, one for a %d-byte id %d", len(minted), token.MaxIDLen, len(longest))
	if len(minted) >= 200 || len(longest) >= 200 {
		t.Errorf("tokens of %d and %d bytes, want under 200", len(minted), len(longest))
	}
}

func TestTheOwnerIsNotCarried(t *testing.T) {
	s := newSigner(t, [][]byte{keyA})
	owner := "session-0123456789abcdef"
	_, tok := mint(t, s, owner)
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(owner)) || strings.Contains(tok, owner) {
		t.Errorf("token %q carries its owner %q", tok, owner)
	}
}

func TestSignRefusesWhatItCannotBind(t *testing.T) {
	s := newSigner(t, [][]byte{keyA})
	for _, c := range []struct{ name, id, owner string }{
		{"an empty id", "", "alice"},
		{"an id over MaxIDLen", strings.Repeat("x", token.MaxIDLen+1), "alice"},
		{"an empty owner", "page-1", ""},
	} {
		if tok, err := s.Sign(c.id, c.owner); err == nil {
			t.Errorf("Sign with %s = %q, want an error", c.name, tok)
		}
	}
	if _, _, err := s.Mint(""); err == nil {
		t.Error("Mint for an empty owner succeeded")
	}
}

// TestAttacks is every way a client may try to pass a token it was not
// given: each is refused with exactly ErrInvalid.
func TestAttacks(t *testing.T) {
	clk := storetest.NewClock()
	s := newSigner(t, [][]byte{keyA}, token.WithClock(clk.Now), token.WithMaxAge(time.Hour))
	id, tok := mint(t, s, "alice")
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

	t.Run("a token signed with the attacker's own key", func(t *testing.T) {
		forger := newSigner(t, [][]byte{keyB}, token.WithClock(clk.Now))
		refused(t, s, sign(t, forger, id, "alice"), "alice", "forged")
	})
	t.Run("a token made up of its format with a guessed MAC", func(t *testing.T) {
		b := bytes.Clone(raw)
		clear(b[len(b)-32:])
		refused(t, s, enc(b), "alice", "zero MAC")
		refused(t, s, enc(raw[:len(raw)-32]), "alice", "no MAC")
	})
	t.Run("one flipped bit of the token's bytes, at every position", func(t *testing.T) {
		for i := range len(raw) * 8 {
			b := bytes.Clone(raw)
			b[i/8] ^= 1 << (i % 8)
			refused(t, s, enc(b), "alice", "byte bit "+strconv.Itoa(i))
		}
	})
	t.Run("one flipped bit of the token's characters, at every position", func(t *testing.T) {
		for i := range len(tok) * 8 {
			b := []byte(tok)
			b[i/8] ^= 1 << (i % 8)
			refused(t, s, string(b), "alice", "character bit "+strconv.Itoa(i))
		}
	})
	t.Run("truncated at every length", func(t *testing.T) {
		for n := range len(tok) {
			refused(t, s, tok[:n], "alice", "first "+strconv.Itoa(n)+" characters")
			refused(t, s, tok[len(tok)-n:], "alice", "last "+strconv.Itoa(n)+" characters")
		}
	})
	t.Run("extended or re-encoded", func(t *testing.T) {
		for _, bad := range []string{tok + "A", tok + "=", tok + "==", tok[:40] + "\n" + tok[40:], tok + tok,
			base64.URLEncoding.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw)} {
			refused(t, s, bad, "alice", "altered encoding "+bad)
		}
	})
	t.Run("another owner's token", func(t *testing.T) {
		refused(t, s, tok, "mallory", "alice's token, for mallory")
		refused(t, s, tok, "", "alice's token, for no owner")
		refused(t, s, tok, "alice ", "alice's token, for a near name")
	})
	t.Run("a client-chosen id, bare or spliced into a real token", func(t *testing.T) {
		refused(t, s, id, "alice", "the bare id")
		refused(t, s, "fixated-by-attacker", "alice", "a chosen id")
		for _, chosen := range []string{"fixated-by-attacker", id[:25], id + "A", "VICTIMVICTIMVICTIMVICTIM22"} {
			b := append(append(bytes.Clone(raw[:9]), chosen...), raw[len(raw)-32:]...)
			refused(t, s, enc(b), "alice", "id "+chosen+" spliced in")
		}
	})
	t.Run("a token for another purpose", func(t *testing.T) {
		csrf := newSigner(t, [][]byte{keyA}, token.WithClock(clk.Now), token.WithPurpose("csrf"))
		refused(t, s, sign(t, csrf, id, "alice"), "alice", "a CSRF token as an instance token")
		refused(t, csrf, tok, "alice", "an instance token as a CSRF token")
	})
	t.Run("expired", func(t *testing.T) {
		clk := storetest.NewClock()
		s := newSigner(t, [][]byte{keyA}, token.WithClock(clk.Now), token.WithMaxAge(time.Hour))
		id, tok := mint(t, s, "alice")
		clk.Advance(time.Hour)
		if got, err := s.Verify(tok, "alice"); err != nil || got != id {
			t.Fatalf("at exactly the max age: Verify = %q, %v; want %q", got, err, id)
		}
		clk.Advance(time.Second)
		refused(t, s, tok, "alice", "a second past the max age")
		fresh := sign(t, s, id, "alice")
		if got, err := s.Verify(fresh, "alice"); err != nil || got != id {
			t.Errorf("a re-issued token: Verify = %q, %v; want %q", got, err, id)
		}
	})
	t.Run("issued in the future", func(t *testing.T) {
		clk := storetest.NewClock()
		s := newSigner(t, [][]byte{keyA}, token.WithClock(clk.Now))
		id, tok := mint(t, s, "alice")
		clk.Advance(-token.MaxSkew)
		if got, err := s.Verify(tok, "alice"); err != nil || got != id {
			t.Fatalf("from a node MaxSkew ahead: Verify = %q, %v; want %q", got, err, id)
		}
		clk.Advance(-time.Second)
		refused(t, s, tok, "alice", "from further in the future than MaxSkew")
	})
}

func TestKeyRotation(t *testing.T) {
	old := newSigner(t, [][]byte{keyA})
	id, oldTok := mint(t, old, "alice")

	// Step 1: every node lists the new key second; step 2: first.
	for _, keys := range [][][]byte{{keyA, keyC}, {keyC, keyA}} {
		rolling := newSigner(t, keys)
		if got, err := rolling.Verify(oldTok, "alice"); err != nil || got != id {
			t.Errorf("the old key still listed: Verify = %q, %v; want %q", got, err, id)
		}
	}
	rolled := newSigner(t, [][]byte{keyC, keyA})
	newTok := sign(t, rolled, id, "alice")
	if got, err := newSigner(t, [][]byte{keyC}).Verify(newTok, "alice"); err != nil || got != id {
		t.Errorf("a token of the rolled signer does not verify under the new key alone: %q, %v", got, err)
	}
	refused(t, old, newTok, "alice", "a new-key token on a node that lacks the new key")

	// Step 3: the old key is removed: what it signed is retired.
	retired := newSigner(t, [][]byte{keyC})
	refused(t, retired, oldTok, "alice", "signed by a retired key")
}

func TestASignerIsSafeForConcurrentUse(t *testing.T) {
	s := newSigner(t, [][]byte{keyA, keyB})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			owner := "owner-" + strconv.Itoa(g)
			for range 200 {
				id, tok, err := s.Mint(owner)
				if err != nil {
					t.Error(err)
					return
				}
				if got, err := s.Verify(tok, owner); err != nil || got != id {
					t.Errorf("Verify = %q, %v; want %q", got, err, id)
					return
				}
			}
		})
	}
	wg.Wait()
}
