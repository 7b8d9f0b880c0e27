package redisstore

// Waiting returns the number of writes of s waiting for a round trip.
func Waiting(s *Store) int {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return len(s.queue)
}

// ApplySource is apply.lua, for the benchmarks that send it themselves.
var ApplySource = applySource
