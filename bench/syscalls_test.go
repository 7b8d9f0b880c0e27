package bench

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// bytesWritten returns how many bytes this process has handed to write
// system calls (wchar in /proc/self/io): pages bbolt writes to its file,
// commands sent to Redis. ok is false where /proc is not available.
func bytesWritten() (n int64, ok bool) {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, found := strings.CutPrefix(sc.Text(), "wchar: "); found {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
