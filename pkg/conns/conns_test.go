package conns

import (
	"errors"
	"net"
	"testing"
	"time"
)

func TestCloseAllFailsPendingReads(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // the server never writes: reads on the client block
		}
	}()
	var s Set
	var clients []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, s.Track(c))
	}
	if n := s.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3", n)
	}
	clients[0].Close()
	if n := s.Len(); n != 2 {
		t.Fatalf("Len after one Close = %d, want 2", n)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := clients[1].Read(make([]byte, 1))
		errc <- err
	}()
	s.CloseAll()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("pending read ended with %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a pending read did not end after CloseAll")
	}
	if n := s.Len(); n != 0 {
		t.Errorf("Len after CloseAll = %d, want 0", n)
	}
	if err := clients[2].Close(); err == nil {
		t.Error("closing a connection CloseAll closed succeeded again")
	}
}
