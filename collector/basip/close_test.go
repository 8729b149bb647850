package basip

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestClientCloseClosesTheConnection(t *testing.T) {
	closed := make(chan struct{}, 1)
	url := rawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				closed <- struct{}{}
				return
			}
			if r.URL.Path == "/api/v1/login" {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"token\":\"t\"}")
				continue
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
		}
	})
	c := newClient(t, url, "v1", "p", nil)
	if _, _, err := c.SIPSettings(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
		t.Fatal("closed before Close")
	case <-time.After(20 * time.Millisecond):
	}
	c.Close()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("Close left the connection open")
	}
	if _, _, err := c.SIPSettings(context.Background()); err != nil {
		t.Fatalf("after Close: %v", err)
	}
}

// TestClientCloseDuringARequest: the connection carrying a request when
// Close is called is closed once answered, not kept for five minutes.
func TestClientCloseDuringARequest(t *testing.T) {
	asked, answer, closed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	url := rawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				close(closed)
				return
			}
			if r.URL.Path == "/api/v1/login" {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"token\":\"t\"}")
				continue
			}
			close(asked)
			<-answer
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
		}
	})
	c := newClient(t, url, "v1", "p", nil)
	done := make(chan error, 1)
	go func() {
		_, _, err := c.SIPSettings(context.Background())
		done <- err
	}()
	<-asked
	c.Close()
	close(answer)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("the connection that carried the request was kept after Close")
	}
}
