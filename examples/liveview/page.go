package main

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/livectx/livectx/socket"
)

// Line is one entry of the temporary list.
type Line struct {
	ID   string
	Text string
}

// The fields handlers assign (fCount is the version's, with Page).
var (
	fDraft   = socket.FieldOf(func(p *Page) *string { return &p.Draft })
	fSaved   = socket.FieldOf(func(p *Page) *string { return &p.Saved })
	fLines   = socket.FieldOf(func(p *Page) *[]Line { return &p.Lines })
	fAdded   = socket.FieldOf(func(p *Page) *int { return &p.Added })
	fNode    = socket.FieldOf(func(p *Page) *string { return &p.Node })
	fResumed = socket.FieldOf(func(p *Page) *bool { return &p.Resumed })
	fLost    = socket.FieldOf(func(p *Page) *string { return &p.Lost })
)

// maxText is the longest text the form accepts, in characters.
const maxText = 1000

// pageView is the template of the page's LiveView.
var pageView = HTML[Page](
	`<main><h1>livectx under the Phoenix LiveView client</h1>`,
	`<p class="status">Served by node <b id="node">`, Text(func(p Page) string { return p.Node }, fNode.Name()),
	`</b> (view version <span id="version">`, Text(func(Page) string { return viewVersion }),
	`</span>). <span id="resumed">`, Text(func(p Page) string {
		if p.Resumed {
			return "Resumed from the store"
		}
		return "New page"
	}, fResumed.Name()),
	`</span><span id="lost">`, Text(func(p Page) string {
		if p.Lost == "" {
			return ""
		}
		return " This version could not keep: " + p.Lost + "."
	}, fLost.Name()),
	`</span></p>`,
	`<section><h2>Counter</h2>`,
	`<button id="dec" phx-click="dec">-</button> <span id="count">`,
	Text(func(p Page) string { return fmt.Sprint(p.Count) }, fCount.Name()),
	`</span> <button id="inc" phx-click="inc">+</button></section>`,
	`<section><h2>Form</h2><form id="note" phx-change="draft" phx-submit="save">`,
	`<input id="text" name="text" autocomplete="off" value="`, Text(func(p Page) string { return p.Draft }, fDraft.Name()),
	`"> <button id="save" type="submit">Save</button></form>`,
	`<p>The server holds the draft <q id="echo">`, Text(func(p Page) string { return p.Draft }, fDraft.Name()),
	`</q> and the saved text <q id="saved">`, Text(func(p Page) string { return p.Saved }, fSaved.Name()),
	`</q>.</p></section>`,
	`<section><h2>Temporary list</h2><p>Lines are tempAssigned: sent once, never stored; a rejoin starts the list empty.</p>`,
	`<button id="add" phx-click="add">Add a line</button><ul id="lines" phx-update="append">`,
	List(func(p Page) []Line { return p.Lines }, HTML[Line](
		`<li id="`, Text(func(l Line) string { return l.ID }), `">`, Text(func(l Line) string { return l.Text }), `</li>`,
	), fLines.Name()),
	`</ul></section></main>`,
)

// errUnknownEvent answers an event the page has no handler for.
var errUnknownEvent = errors.New("liveview: unknown event")

// mount prepares a socket that has just been opened for a join.
func mount(s *socket.Socket[Page], node string) error {
	lost := strings.Join(s.ResetFields(), ", ")
	if err := s.Assign(fNode.Set(node), fResumed.Set(s.Restored()), fLost.Set(lost)); err != nil {
		return err
	}
	return s.TempAssign(fLines.Set(nil))
}

// handle applies the event named name, with its payload's value, to s. It
// reads the socket's current fields, so when socket.Event runs it again on
// a reloaded context (after a conflict) it applies to that context.
func handle(s *socket.Socket[Page], name string, value formValue) error {
	switch name {
	case "inc":
		return s.Assign(fCount.Set(fCount.Get(s) + 1))
	case "dec":
		return s.Assign(fCount.Set(fCount.Get(s) - 1))
	case "add":
		n := fAdded.Get(s) + 1
		line := Line{ID: "line-" + strconv.Itoa(n), Text: fmt.Sprintf("Line %d, added on node %s", n, fNode.Get(s))}
		return s.Assign(fAdded.Set(n), fLines.Set(append(fLines.Get(s), line)))
	case "draft", "save":
		text, err := value.text()
		if err != nil {
			return err
		}
		if name == "draft" {
			return s.Assign(fDraft.Set(text))
		}
		return s.Assign(fSaved.Set(text), fDraft.Set(""))
	}
	return fmt.Errorf("%w %q", errUnknownEvent, name)
}

// formValue is an event's "value": a query string for form events.
type formValue string

// text returns the form's "text" field, refusing text too long to keep.
func (v formValue) text() (string, error) {
	q, err := url.ParseQuery(string(v))
	if err != nil {
		return "", fmt.Errorf("liveview: form value: %w", err)
	}
	t := q.Get("text")
	if n := utf8.RuneCountInString(t); n > maxText {
		return "", fmt.Errorf("liveview: text of %d characters, over %d", n, maxText)
	}
	return t, nil
}
