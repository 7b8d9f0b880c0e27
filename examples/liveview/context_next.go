//go:build nextversion

package main

import "github.com/livectx/livectx/socket"

// viewVersion is the version of the view this build serves: the next
// version, built with -tags nextversion. Its context type differs from
// version 1's (context.go): the counter is an int64 stored as "clicks"
// (version 1 stores an int as "count"). A migration converts a version 1
// record when a page moves to this version; "count" stays in the record
// (not retired) while version 1 nodes may still serve the page.
const viewVersion = "2"

// Page is the context of the example's LiveView: what a page keeps on the
// store, plus the unstored fields a render needs.
type Page struct {
	Count int64  `msgpack:"clicks"` // the counter (phx-click)
	Draft string `msgpack:"draft"`  // the form's text as typed (phx-change)
	Saved string `msgpack:"saved"`  // the text last submitted (phx-submit)

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
var fCount = socket.FieldOf(func(p *Page) *int64 { return &p.Count })

// managerOptions are the options this version's Manager needs: the
// migration of version 1's "count" into "clicks".
func managerOptions() []socket.Option {
	return []socket.Option{
		socket.Migrate("count", func(st socket.Stored) ([]socket.Assignment, error) {
			var n int
			if err := st.Decode(&n); err != nil {
				return nil, err
			}
			return []socket.Assignment{fCount.Set(int64(n))}, nil
		}),
	}
}
