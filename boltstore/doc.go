// Package boltstore is the bbolt backend of livectx: the contexts (LiveView
// states) of a single server kept in one file that survives restarts and
// crashes.
//
// # Layout
//
// Everything lives under one top-level bucket (WithBucket, default "livectx"),
// so applications can share a file by choosing different names. It holds two
// nested buckets:
//
//	records: u16be(len(id)) id              -> metadata (format 1, version, expiry, size)
//	         u16be(len(id)) id  field name  -> the field's bytes
//	expiry:  u64be(expiry) id               -> empty (expiry in unix ns, sign bit flipped)
//
// Metadata is 25 bytes: a format byte (1), then big-endian u64 version, i64
// expiry in unix nanoseconds (0: never) and u64 size (store.Record.Size).
// Unreadable metadata is reported as a *store.CorruptError.
//
// The length prefix maps every id, whatever bytes it holds, to keys no other
// id can reach, and puts a record's metadata just before its fields, so Load
// is one seek and a short scan. Each field is its own key: an Apply that sets
// one field writes that field and the metadata, whatever else the record
// holds. Versions are stored, so they survive reopening.
//
// # Expiry
//
// With a TTL, Apply and Touch store the record's expiry time in its metadata
// and move its entry in the expiry index. A record past its expiry reads as
// missing at once. A background sweeper (WithSweepInterval) deletes expired
// records in transactions of at most a thousand records, walking the index
// from its oldest entry and stopping at the first that has not expired, so a
// sweep costs only what has expired. Close stops the sweeper and waits for it.
//
// # Durability and ownership
//
// Writes are fsynced before Apply returns (bbolt's default). Concurrent writes
// share transactions through a group commit: while one transaction commits,
// the writes that arrive queue up and all go in the next, so many goroutines
// share few fsyncs and a lone writer never waits.
//
// Open owns the file it opens and Close closes it; New uses a *bbolt.DB the
// caller owns and Close leaves it open.
package boltstore
