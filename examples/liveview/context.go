//go:build !nextversion

package main

import "github.com/livectx/livectx/socket"

// viewVersion is the version of the view this build serves. Build with
// -tags nextversion for the next one (context_next.go), whose context type
// differs: the rolling deploy test runs the two side by side.
const viewVersion = "1"

// Page is the context of the example's LiveView: what a page keeps on the
// store, plus the unstored fields a render needs.
type Page struct {
	Count int    `msgpack:"count"` // the counter (phx-click)
	Draft string `msgpack:"draft"` // the form's text as typed (phx-change)
	Saved string `msgpack:"saved"` // the text last submitted (phx-submit)

	// Lines is tempAssigned: each render sends the lines added by its event,
	// the client appends them (phx-update="append"), then the field is
	// empty again. The store only ever receives that reset value (nil), so
	// after a rejoin the list starts empty, as a temporary assign does in
	// Phoenix.
	Lines []Line `msgpack:"lines"`
	Added int    `msgpack:"-"` // lines added on this node, for their DOM ids

	Node    string `msgpack:"-"` // the node serving the page
	Resumed bool   `msgpack:"-"` // the join found the page's context in the store
	Lost    string `msgpack:"-"` // the stored fields this version could not read
}

// fCount is the counter's field.
var fCount = socket.FieldOf(func(p *Page) *int { return &p.Count })

// managerOptions are the options this version's Manager needs: none.
func managerOptions() []socket.Option { return nil }
