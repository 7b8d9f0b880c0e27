package redisstore

import (
	"slices"
	"strings"
	"testing"
)

func FuzzEscape(f *testing.F) {
	for _, id := range []string{"a", "{x}", "*?[]\\", "a:b", "%41", "\x00\xff", "é"} {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		key := escape(id)
		if strings.ContainsAny(key, "*?[]\\{}: ") {
			t.Fatalf("escape(%q) = %q holds a glob, brace or separator character", id, key)
		}
		back, ok := unescape(key)
		if !ok || back != id {
			t.Fatalf("unescape(escape(%q)) = %q, %v", id, back, ok)
		}
	})
}

func TestUnescapeAcceptsOnlyWhatEscapeWrites(t *testing.T) {
	for _, key := range []string{"%41", "%2a", "%2", "%", "a:b", "{", "%G0"} {
		if id, ok := unescape(key); ok {
			t.Errorf("unescape(%q) = %q, want it refused: escape never writes it", key, id)
		}
	}
}

func TestCursorsRoundTrip(t *testing.T) {
	for _, p := range []position{
		{},
		{node: "127.0.0.1:7001", scan: 1234},
		{node: "[::1]:7002", done: true, left: []string{"a", "%7B"}},
	} {
		got, err := parsePosition(p.String())
		if err != nil || got.node != p.node || got.scan != p.scan || got.done != p.done || !slices.Equal(got.left, p.left) && len(p.left) > 0 {
			t.Errorf("parsePosition(%v.String()) = %v, %v", p, got, err)
		}
	}
}
