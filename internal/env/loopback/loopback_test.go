package loopback

import (
	"context"
	"net"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:9092", true},
		{"127.9.8.7:9092", true},
		{"localhost:9092", true},
		{"[::1]:9092", true},
		{"10.0.0.1:9092", false},
		{"[2001:db8::1]:9092", false},
		{"example.com:9092", false},
		{"nonsense", false},
	} {
		if err := Check(tc.addr); (err == nil) != tc.ok {
			t.Errorf("Check(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}

func TestDialRefusesBeforeConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := Dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial %s: %v", ln.Addr(), err)
	}
	conn.Close()
	// A cancelled context: were the check broken, no packet would leave
	// the machine either, and the error would be the cancellation's.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Dial(ctx, "tcp", "192.0.2.1:9")
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("Dial(192.0.2.1:9) = %v, want the loopback refusal", err)
	}
}
