// Package bootstrap parses Kafka bootstrap lists, the one format every kmt
// part takes its cluster addresses in.
package bootstrap

import "strings"

// Split turns "host:port, host:port" into its addresses, dropping blanks.
// kafka-go wants them apart: kafka.TCP("a:1,b:2") is one bad address.
func Split(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
