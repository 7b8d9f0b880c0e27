package main

import (
	"html"
	"strconv"
	"strings"

	"github.com/livectx/livectx/socket"
)

// This file is the template layer: HTML with slots, rendered into the
// Phoenix LiveView client's tree format (phoenix_live_view 1.1+).
//
// A rendered tree is a JSON object: "s" holds the statics (the fixed HTML
// between the slots, one more than there are slots), "0", "1", ... hold the
// dynamics, each an HTML string (already escaped) or a nested tree. A list
// is a keyed comprehension: "s" the statics of one entry, "k" the entries by
// position ("0": {dynamics of entry 0}, ...) and "kc" their count.
//
// The client caches the tree it got at join. A diff holds only the slots
// that changed, without statics: a string replaces a slot, an object merges
// into it, and a list's {"k": {...}} replaces its entries by position and
// truncates to "kc". So the statics cross the wire once per join.

// Template is HTML with slots over a context of type T. Build it with HTML.
type Template[T any] struct {
	statics []string
	slots   []Slot[T]
}

// Slot is one dynamic part of a Template: the context fields it reads (by
// the names socket.Changed uses), and how it renders.
type Slot[T any] struct {
	deps []string
	full func(c T) any // the slot's value in a full render
	diff func(c T) any // its value in a diff (nil: the same as full)
	html func(b *strings.Builder, c T)
}

// HTML makes a template from parts: a string is static HTML, written as it
// is (so it must come from the program, never from a user); a Slot is a
// dynamic part. Two slots in a row get an empty static between them.
func HTML[T any](parts ...any) *Template[T] {
	t := &Template[T]{statics: []string{""}}
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			t.statics[len(t.statics)-1] += p
		case Slot[T]:
			t.slots = append(t.slots, p)
			t.statics = append(t.statics, "")
		default:
			panic("liveview: HTML: a part is a string or a Slot of the template's type")
		}
	}
	return t
}

// Text is a slot holding text (HTML-escaped, so it also fits inside a
// quoted attribute value) that depends on the fields named by deps.
func Text[T any](text func(c T) string, deps ...string) Slot[T] {
	value := func(c T) any { return html.EscapeString(text(c)) }
	return Slot[T]{
		deps: deps,
		full: value,
		html: func(b *strings.Builder, c T) { b.WriteString(html.EscapeString(text(c))) },
	}
}

// List is a slot holding one rendering of entry per item (a keyed
// comprehension), depending on the fields named by deps. The entry
// template's slots must be Text slots.
func List[T, E any](items func(c T) []E, entry *Template[E], deps ...string) Slot[T] {
	return Slot[T]{
		deps: deps,
		full: func(c T) any {
			return map[string]any{"s": entry.statics, "k": entry.keyed(items(c))}
		},
		diff: func(c T) any { return map[string]any{"k": entry.keyed(items(c))} },
		html: func(b *strings.Builder, c T) {
			for _, it := range items(c) {
				entry.write(b, it)
			}
		},
	}
}

// keyed returns the "k" object of a comprehension of t over items.
func (t *Template[T]) keyed(items []T) map[string]any {
	k := make(map[string]any, len(items)+1)
	for i, it := range items {
		k[strconv.Itoa(i)] = t.dynamics(it, nil)
	}
	k["kc"] = len(items)
	return k
}

// dynamics returns the slots of t for c by index: all of them when changed
// is nil (a full render), else those depending on a changed field, in diff
// form.
func (t *Template[T]) dynamics(c T, changed *socket.Changed) map[string]any {
	d := make(map[string]any, len(t.slots)+1)
	for i, sl := range t.slots {
		switch {
		case changed == nil:
			d[strconv.Itoa(i)] = sl.full(c)
		case sl.changed(*changed):
			if sl.diff != nil {
				d[strconv.Itoa(i)] = sl.diff(c)
			} else {
				d[strconv.Itoa(i)] = sl.full(c)
			}
		}
	}
	return d
}

func (sl Slot[T]) changed(ch socket.Changed) bool {
	for _, name := range sl.deps {
		if ch.Has(name) {
			return true
		}
	}
	return false
}

// Full returns the whole rendered tree of t for c, statics included: the
// reply to a join.
func (t *Template[T]) Full(c T) map[string]any {
	d := t.dynamics(c, nil)
	d["s"] = t.statics
	return d
}

// Diff returns the slots of t that depend on a changed field, without
// statics, or nil when none does.
func (t *Template[T]) Diff(c T, changed socket.Changed) map[string]any {
	d := t.dynamics(c, &changed)
	if len(d) == 0 {
		return nil
	}
	return d
}

// String renders t for c as HTML, for the page the server sends before the
// client joins.
func (t *Template[T]) String(c T) string {
	var b strings.Builder
	t.write(&b, c)
	return b.String()
}

func (t *Template[T]) write(b *strings.Builder, c T) {
	for i, sl := range t.slots {
		b.WriteString(t.statics[i])
		sl.html(b, c)
	}
	b.WriteString(t.statics[len(t.statics)-1])
}
