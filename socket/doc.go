// Package socket holds the context (the LiveView state, not a
// context.Context) of each LiveView instance as a value of the author's
// struct type T, with LiveViewJS's assign, tempAssign and render cycle, and
// keeps it in a store.ContextStore so it survives a restart (boltstore) or
// moves between nodes (redisstore).
//
// # The context type
//
// T is a struct. Each top-level exported field is stored as one field of the
// instance's record, named by its msgpack tag (`msgpack:"count"`) or else
// its Go name, its value encoded with msgpack. Unexported fields and fields
// tagged `msgpack:"-"` are never stored: use them for node-local handles
// (channels, clients), which start from the initial value on every node.
// An exported embedded struct needs a msgpack name tag (or "-").
//
// # Beside LiveViewJS
//
//	LiveViewJS                        livectx
//	socket.context (read-only)        s.Context() (a deep copy), field.Get(s) (one field, no copy),
//	                                  or the T that Render passes
//	socket.assign({count: 1})         s.Assign(count.Set(1)), or s.Assign(socket.Set("count", 1))
//	socket.tempAssign({photos: []})   s.TempAssign(photos.Set([]Photo{}))
//	mount(params, session, socket)    views.OpenToken(ctx, signer, token, owner, initial), or
//	                                  views.Open(ctx, id, initial) for a trusted id;
//	                                  s.Restored() says the store holds the context
//	handleEvent then render           s.Event(ctx, handle, render), or Assign... then s.Render(ctx, render)
//	render(context, meta)             the render func gets the context and Changed (what changed)
//	instance cleanup                  s.Close(ctx) (deletes the record, or keeps it with KeepOnClose)
//
// where count and photos are field handles made once with FieldOf:
//
//	var count = socket.FieldOf(func(c *Counter) *int { return &c.Count })
//
// Field handles are checked by the compiler: count.Set("x") does not build.
// By-name assignments (socket.Set) suit dynamic input such as forms and are
// checked when assigned: an unknown name or a value of the wrong type is an
// error naming the field, and the whole Assign changes nothing.
//
// # The render cycle
//
// Assignments accumulate until Render. Render first makes one
// version-checked store write holding only the fields whose encoded value
// differs from the stored one, then calls the author's render with the
// context and the fields that changed, then resets the temporary fields.
// Only assigned fields are encoded, so a cycle costs in proportion to what
// it assigned, not to the size of the context; a cycle that changes nothing
// writes nothing. So does a page view: Open of a new id writes nothing, and
// the first render that assigns a field other than a temporary one creates
// the record.
//
// A value changed in place (an element of a slice, a map entry) is not seen
// until its field is assigned again: assign the modified value, as
// LiveViewJS code does. A failed write keeps the assignments for the next
// Render.
//
// # Many nodes, many builds
//
// If another socket (on another node) wrote the record since this one read
// it, the write fails with store.ErrConflict and writes nothing. Event then
// reloads the stored context and runs the handler again on it (EventRetries
// bounds how often), so a click is applied once and never dropped; Render
// called directly returns the conflict, and Reload takes the stored context.
// Sync reloads a socket that another node has written before a render that
// writes nothing.
//
// A deploy may change T. Stored bytes that are malformed are an error
// (store.ErrCorrupt); well-formed bytes that no longer fit a field's type
// are a schema change: a migration registered with Migrate converts them,
// or else the field takes its initial value and ResetFields names it (Strict
// makes it an error, store.ErrSchema). Stored fields T does not have are
// kept, for the nodes of the previous build, until Retire names them.
//
// # Who may resume a context
//
// An id is a bearer credential: Open trusts it. Sockets whose id comes from
// a client are opened with OpenToken, which verifies a signed token binding
// the id to its owner (package token) before reading the store.
//
// All methods are safe for concurrent use; Event runs a whole event (handle,
// then render) at a time.
package socket
