// Package bench measures livectx against the Go stores people use today for
// the same job, on the same machine, in one run: scs's memstore and a plain
// map in memory, raw bbolt written the usual way, and scs's goredisstore and
// gofiber's Redis storage on a real Redis.
//
// The job is a LiveView's life: mount (restore a context of N bytes held in
// ten fields), then events that each change one small field (an int
// counter) and persist. livectx runs it through socket.Socket, which writes
// only the field that changed; the peers encode the whole context into one
// value per instance and write that value, as sessions stores are used.
// The mass reconnect mounts 10,000 contexts from 32 goroutines at once, as a
// node's clients do after a failover; the idle-memory benchmark weighs what
// open instances hold, livectx's sockets against a map of blobs beside the
// decoded contexts a LiveView server on a blob store keeps; and
// BenchmarkMountParts times the steps of a Redis mount at 1 KiB on each
// side, on the server and on a connection that replays its replies.
//
// It is a module of its own so that the library's users never download the
// peers. run.sh runs the benchmarks of the table README.md quotes and
// prints it; README.md gives the command of BenchmarkMountParts.
package bench
