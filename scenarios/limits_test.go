package scenarios

import (
	"errors"
	"strings"
	"testing"
)

// TestLocalLimits: the embedded backend refuses more partitions (over all
// topics) or a higher rate than it can run, with one error each naming the
// field; other backends take them.
func TestLocalLimits(t *testing.T) {
	const base = `apiVersion: kmt.dev/v1
kind: Scenario
metadata: {name: limits}
spec:
  topology:
    topics:
      - {name: a, partitions: %A%}
      - {name: b, partitions: %B%}
  load: {rate: %R%, messageSize: 256, streams: 4, duration: 10s}
`
	cases := []struct {
		name    string
		a, b, r string
		backend Backend
		want    []string // one substring per error
	}{
		{"at the limits", "150", "50", "100000", BackendLocal, nil},
		{"one partition too many", "150", "51", "1000", BackendLocal, []string{"201 partitions in all"}},
		{"rate too high", "6", "6", "100001", BackendLocal, []string{"100001 records/s"}},
		{"both", "1000", "1", "500000", BackendLocal, []string{"1001 partitions", "500000 records/s"}},
		{"real clusters have no such limit", "1000", "1", "500000", BackendExternal, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.NewReplacer("%A%", tc.a, "%B%", tc.b, "%R%", tc.r).Replace(base)
			s, err := Parse("limits.yaml", []byte(y))
			if err != nil {
				t.Fatal(err)
			}
			err = s.Validate(tc.backend)
			var es Errors
			if err != nil && !errors.As(err, &es) {
				t.Fatalf("Validate: %v (not Errors)", err)
			}
			var got []string
			for _, e := range es {
				if strings.Contains(e.Msg, "embedded setup") {
					got = append(got, e.Msg)
				}
			}
			if len(got) != len(tc.want) || (err != nil && len(es) != len(got)) {
				t.Fatalf("errors %v, want %d limit errors %q and nothing else", err, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("error %q does not say %q", got[i], w)
				}
			}
		})
	}
}
