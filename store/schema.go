package store

import (
	"errors"
	"fmt"
)

// ErrSchema is the error of stored bytes that are well-formed but do not fit
// the Go type they are decoded into: the context type changed since they
// were written (a deploy), the bytes are not corrupt. Match it with
// errors.Is; errors.As with a *SchemaError gives the details.
var ErrSchema = errors.New("store: stored value does not fit the context type")

// SchemaError reports a stored field whose well-formed bytes do not decode
// into the field's current Go type. It matches ErrSchema, never ErrCorrupt.
type SchemaError struct {
	ID     string
	Field  string
	Stored string // the msgpack type the bytes hold, such as "int" or "str"
	Go     string // the Go type they were decoded into
	Err    error  // the decoder's error
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("store: field %q of record %q holds a msgpack %s, which does not decode into %s: %v", e.Field, e.ID, e.Stored, e.Go, e.Err)
}

func (e *SchemaError) Unwrap() []error { return []error{ErrSchema, e.Err} }
