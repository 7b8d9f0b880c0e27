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
//     the options every backend shares (TTL, size caps, clock).
//   - codec: the canonical, bounded msgpack encoding of context fields
//     that every read of stored bytes goes through.
//   - memory: the default store, in this process's memory.
//   - boltstore: a store in one bbolt file, which survives restarts.
//   - redisstore: a store in Redis (standalone, Sentinel or Cluster), shared
//     by every server node, so a LiveView that reconnects to another node
//     resumes where it was.
//   - storeurl: opens any of them from a URL (memory://, bolt://,
//     redis://, rediss://, redis+cluster://, redis+sentinel://), for
//     servers that take the store from a flag or the environment.
//   - sealed and observe: wrapper stores that encrypt every field at rest
//     (AES-256-GCM, key rotation) and report every operation to an
//     observer (logging through a *slog.Logger; examples/prometheus exports
//     metrics). Each returns its own Store type over any store; store.As
//     finds through them what the store underneath can do.
//   - store/storetest and socket/sockettest: the conformance suite a
//     backend runs to prove that it keeps the contract, and the socket's
//     behaviours over any store.
//
// Commands: examples/demo is a LiveView-style page built on socket (the
// README's first command); cmd/livectx inspects what any store URL holds.
//
// Architecture: a Socket[T] keeps the live context in memory and, after each
// render, writes only the fields whose encoded value changed, in one atomic,
// versioned Apply. A store keeps each record as separate fields plus a
// version, so a one-field assign writes one field whatever the size of the
// context, and two sockets on one id (a reconnect that landed on another
// node) cannot overwrite each other: the stale one gets store.ErrConflict.
package livectx
