package redisstore

// Waiting returns the number of writes of s waiting for a round trip.
func Waiting(s *Store) int { return s.writes.waiting() }

// WaitingLoads returns the number of loads of s waiting for a round trip.
func WaitingLoads(s *Store) int { return s.loads.waiting() }

func (q *queue) waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.calls)
}

// ApplySource is apply.lua, for the benchmarks that send it themselves.
var ApplySource = applySource
