package mirror

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMirrorMaker2OverSASLSSL runs MirrorMaker 2 against a real broker
// whose only client listener is SASL_SSL, with certificates made here:
// the source side logs in with SCRAM-SHA-512, the target side with PLAIN
// (same broker, two aliases: the default policy writes source.orders
// beside orders). Every record arrives; the effective properties file
// holds no password; a wrong password fails Start with an error naming the
// mechanism and the cluster.
func TestMirrorMaker2OverSASLSSL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts JVMs")
	}
	dir := t.TempDir()
	java := mm2Java(t, dir)
	libs := filepath.Dir(java[len(java)-1]) // the classpath: <libs>/*
	b := startSecureBroker(t, libs)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	cl, err := kgo.NewClient(append(b.kgoOpts(t, secUser, secPassword), kgo.AllowAutoTopicCreation())...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 0; i < 100; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte(srcValue(0, i))}).FirstErr(); err != nil {
			t.Fatalf("produce over SASL_SSL: %v", err)
		}
	}

	run := func(t *testing.T, srcPass string) (*MirrorMaker2, error) {
		src, srcEnv, err := JavaSecurity{TLS: true, CAFile: b.PKI.CAFile, Mechanism: "SCRAM-SHA-512", Username: secUser, Password: srcPass}.JavaProps("KMT_MM2_SOURCE")
		if err != nil {
			t.Fatal(err)
		}
		dst, dstEnv, err := JavaSecurity{TLS: true, CAFile: b.PKI.CAFile, Mechanism: "PLAIN", Username: secUser, Password: secPassword}.JavaProps("KMT_MM2_TARGET")
		if err != nil {
			t.Fatal(err)
		}
		mdir := t.TempDir()
		m, err := NewMirrorMaker2(MM2Config{
			Settings: MM2Settings{SourceBootstrap: b.Bootstrap, TargetBootstrap: b.Bootstrap, Topics: []string{"orders"},
				SourceBrokers: 1, TargetBrokers: 1, SourceClient: src, TargetClient: dst},
			Java: java, Dir: mdir, Env: append(srcEnv, dstEnv...), Logger: testLogger(t), StartTimeout: 3 * time.Minute,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		props, _ := os.ReadFile(m.PropertiesPath())
		if strings.Contains(string(props), secPassword) || strings.Contains(string(props), srcPass) {
			t.Errorf("the password is in %s:\n%s", m.PropertiesPath(), props)
		}
		return m, m.Start(ctx)
	}

	t.Run("wrong password", func(t *testing.T) {
		m, err := run(t, "not-the-password")
		if err == nil {
			t.Fatal("MirrorMaker 2 started with a wrong source password")
		}
		t.Logf("wrong password: %v", err)
		for _, want := range []string{"SCRAM-SHA-512", b.Bootstrap, "the source cluster"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not name %q: %v", want, err)
			}
		}
		m.Close()
	})
	t.Run("copies", func(t *testing.T) {
		if _, err := run(t, secPassword); err != nil {
			t.Fatal(err)
		}
		n := 0
		rd, err := kgo.NewClient(append(b.kgoOpts(t, secUser, secPassword), kgo.ConsumeTopics("source.orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		seen := map[string]bool{}
		for n < 100 && ctx.Err() == nil {
			fs := rd.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true; n++ })
		}
		for i := 0; i < 100; i++ {
			if !seen[srcValue(0, i)] {
				t.Errorf("record %d not copied over SASL_SSL", i)
			}
		}
	})
}
