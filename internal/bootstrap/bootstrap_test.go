package bootstrap

import (
	"slices"
	"testing"
)

func TestSplit(t *testing.T) {
	for in, want := range map[string][]string{
		"":                          nil,
		" , ":                       nil,
		"a:1":                       {"a:1"},
		"a:1,b:2":                   {"a:1", "b:2"},
		" a:1 , ,b:2 ,":             {"a:1", "b:2"},
		"127.0.0.1:9092,[::1]:9093": {"127.0.0.1:9092", "[::1]:9093"},
	} {
		if got := Split(in); !slices.Equal(got, want) {
			t.Errorf("Split(%q) = %q, want %q", in, got, want)
		}
	}
}
