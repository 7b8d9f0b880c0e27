package socket

import "hash/maphash"

// digest stands for an encoding the socket does not keep: its length and
// its 64-bit maphash under its table's seed. The seed is random, made per
// Manager and never shown, so no one can choose two values whose digests
// collide; two different encodings of one length have the same digest with
// probability 2^-64. Comparing digests tells, as comparing the bytes would,
// whether a field changed, at 16 bytes a field whatever its size.
type digest struct {
	sum uint64
	n   int // the encoding's length plus one; 0: no encoding
}

// digest returns b's digest.
func (tab *table) digest(b []byte) digest {
	return digest{sum: maphash.Bytes(tab.seed, b), n: len(b) + 1}
}

// none reports whether d stands for no encoding at all.
func (d digest) none() bool { return d.n == 0 }
