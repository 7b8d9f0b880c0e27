package store

// As returns s as C, one of the optional interfaces (Lister, TTLReader,
// SharedLoader, FieldLoader), when s can serve it: s implements C and so
// does every store it wraps, as far down as Unwrap methods lead. Find
// capabilities with As rather than a type assertion: a wrapper store
// (sealed, observe) has List, TTL and LoadFields whatever it wraps, and one
// the store underneath lacks returns ErrUnsupported. Wrappers do not lend
// bytes (SharedLoader): what they return is not the inner store's.
//
// A wrapper store makes itself transparent to As with a method
// Unwrap() ContextStore returning the store it forwards to.
func As[C any](s ContextStore) (C, bool) {
	c, ok := s.(C)
	for ok {
		w, wraps := s.(interface{ Unwrap() ContextStore })
		if !wraps {
			return c, true
		}
		s = w.Unwrap()
		_, ok = s.(C)
	}
	var none C
	return none, false
}
