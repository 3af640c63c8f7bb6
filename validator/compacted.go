package validator

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	bootlist "github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/intervals"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/logscan"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
)

// compactedScanTimeout bounds the final scan of one compacted topic.
const compactedScanTimeout = 60 * time.Second

// scanCompacted reads, after the drain, what each compacted source topic
// (Config.CompactedTopics) still holds of this run, so the judge can tell a
// record the source's cleaner removed (a mirror reading late can no longer
// copy it) from one the mirror failed to copy while the source had it. A
// failed scan is logged; the judge then uses what the source reader read.
func (v *Validator) scanCompacted(ctx context.Context) {
	if v.cfg.SourceBootstrap == "" {
		return
	}
	for _, topic := range v.cfg.CompactedTopics {
		held := map[streamKey]*intervals.Set{}
		var dec wire.Decoder
		sctx, cancel := context.WithTimeout(ctx, compactedScanTimeout)
		res, err := logscan.Scan(sctx, logscan.Options{Brokers: bootlist.Split(v.cfg.SourceBootstrap), Dial: logscan.DialFunc(v.cfg.SourceDial),
			Security: v.cfg.Security, Topics: []string{topic}, ClientID: "kmt-validator-compacted"}, func(r *kgo.Record) bool {
			o := Observation{Key: r.Key, Value: r.Value}
			for _, h := range r.Headers {
				if h.Key == wire.TombHeaderKey {
					o.Extra = append(o.Extra, wire.Header{Key: h.Key, Value: h.Value})
				}
			}
			rec, err := DecodeObservation(&dec, &o)
			if err != nil || rec.RunID != v.cfg.RunID {
				return true
			}
			k := streamKey{Topic: topic, Stream: rec.Stream, Epoch: rec.Epoch}
			if held[k] == nil {
				held[k] = &intervals.Set{}
			}
			held[k].Add(rec.Seq)
			return true
		})
		cancel()
		if err != nil || len(res.Missing) > 0 {
			v.log.Warn("could not read the compacted source topic after the drain; records its cleaner removed are judged by what the source reader read", "topic", topic, "err", err, "missing", res.Missing)
			continue
		}
		v.mu.Lock()
		v.tr.SetSourceFinal(topic, held)
		v.mu.Unlock()
		v.log.Info("read the compacted source topic after the drain", "topic", topic, "records", res.Records)
	}
}
