package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// The charts' SASL environment works end to end: kmt loadgen authenticates
// to a SCRAM-SHA-512 broker with KMT_KAFKA_SASL_* and every record is
// acked; the wrong password acks none; an unknown mechanism is exit 2
// before anything connects.
func TestLoadgenSASLFromEnvironment(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser(kafkaclient.ScramSHA512, "kmt", "s3cret"), kfake.SeedTopics(1, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bs := strings.Join(c.ListenAddrs(), ",")
	args := []string{"loadgen", "--bootstrap", bs, "--topic", "orders", "--count", "20", "--rate", "200", "--run-id", "sasl-env"}

	t.Setenv(kafkaclient.EnvSASLMechanism, "SCRAM-SHA-512")
	t.Setenv(kafkaclient.EnvSASLUsername, "kmt")
	t.Setenv(kafkaclient.EnvSASLPassword, "s3cret")
	code, out, errs := cliRun(t, args...)
	var st struct{ Acked, Failed uint64 }
	json.Unmarshal([]byte(out), &st)
	if code != 0 || st.Acked != 20 {
		t.Fatalf("with SASL: exit %d, acked %d (want 0 and 20)\n%s", code, st.Acked, errs)
	}

	t.Setenv(kafkaclient.EnvSASLPassword, "wrong")
	code, out, _ = cliRun(t, args...)
	st.Acked = 0
	json.Unmarshal([]byte(out), &st)
	if code == 0 || st.Acked != 0 {
		t.Fatalf("wrong password: exit %d, acked %d; want a failure and nothing acked", code, st.Acked)
	}

	t.Setenv(kafkaclient.EnvSASLMechanism, "GSSAPI")
	code, _, errs = cliRun(t, args...)
	if code != 2 || !strings.Contains(errs, `"GSSAPI"`) || !strings.Contains(errs, "SCRAM-SHA-512") {
		t.Fatalf("unknown mechanism: exit %d, stderr %q; want 2 naming the mechanism and the choices", code, errs)
	}
}
