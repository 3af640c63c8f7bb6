// Package loopback holds the project rule that only loopback addresses
// (localhost, 127.0.0.0/8, ::1) carry the test traffic of the clusters kmt
// starts itself, in one place: the embedded and Apache Kafka clusters'
// DirectDial and the local WAN's fronts all check it here.
package loopback

import (
	"context"
	"fmt"
	"net"
)

// Check says why addr (host:port) is not a loopback address, or nil.
func Check(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s is not a loopback address: only loopback addresses (localhost, 127.0.0.0/8, ::1) carry test traffic", addr)
	}
	return nil
}

// Dial opens a connection to addr after Check accepts it.
func Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := Check(addr); err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
