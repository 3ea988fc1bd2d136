// Package conns tracks open network connections so that all of them can be
// closed at once: by an HTTP client that cannot cancel a single request, or
// by a test broker that drops its clients when a node "stops".
package conns

import (
	"net"
	"sync"
)

// Set is a set of open connections. The zero value is ready to use.
type Set struct {
	mu sync.Mutex
	m  map[*conn]struct{}
}

// Track adds c to the set and returns it wrapped: closing the wrapper
// removes it from the set.
func (s *Set) Track(c net.Conn) net.Conn {
	tc := &conn{Conn: c, set: s}
	s.mu.Lock()
	if s.m == nil {
		s.m = map[*conn]struct{}{}
	}
	s.m[tc] = struct{}{}
	s.mu.Unlock()
	return tc
}

// CloseAll closes every connection in the set, failing whatever I/O is in
// progress on them.
func (s *Set) CloseAll() {
	s.mu.Lock()
	all := make([]*conn, 0, len(s.m))
	for c := range s.m {
		all = append(all, c)
	}
	s.mu.Unlock()
	for _, c := range all {
		_ = c.Close()
	}
}

// Len is the number of open connections in the set.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

type conn struct {
	net.Conn
	set  *Set
	once sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.set.mu.Lock()
		delete(c.set.m, c)
		c.set.mu.Unlock()
	})
	return c.Conn.Close()
}
