// Package livectx keeps the context of LiveView instances — the state that
// LiveViewJS exposes as socket.context, socket.assign and socket.tempAssign —
// for Go LiveView servers, behind a pluggable store.
//
// This root package holds no code; import the package you need:
//
//   - socket: what a LiveView author uses. Socket[T] holds one instance's
//     context as the author's struct T, with Assign, TempAssign and the
//     render cycle, and persists it through a store. Start here.
//   - store: the ContextStore contract that every backend keeps, its errors,
//     the options every backend shares (TTL, size caps, clock) and the
//     bounded msgpack codec that every read of stored bytes goes through.
//   - memory: the default store, in this process's memory.
//   - boltstore: a store in one bbolt file, which survives restarts.
//   - redisstore: a store in Redis (standalone, Sentinel or Cluster), shared
//     by every server node, so a LiveView that reconnects to another node
//     resumes where it was.
//   - store/storetest: the conformance suite a backend runs to prove that it
//     keeps the contract.
//
// Architecture: a Socket[T] keeps the live context in memory and, after each
// render, writes only the fields whose encoded value changed, in one atomic,
// versioned Apply. A store keeps each record as separate fields plus a
// version, so a one-field assign writes one field whatever the size of the
// context, and two sockets on one id (a reconnect that landed on another
// node) cannot overwrite each other: the stale one gets store.ErrConflict.
package livectx
