package local

import (
	"context"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// wanFaults: the WAN kinds shape the link between the mirror and the
// source (latency, bandwidth cap, blackhole, stalls, connection resets) and
// lift the shaping when the window ends. Needs WAN.
var wanFaults = Family{
	Name:  "wan",
	Kinds: []scenarios.FaultKind{scenarios.WANLatency, scenarios.WANBandwidth, scenarios.WANPartition, scenarios.WANStall, scenarios.WANReset},
	Plan: func(env Env, f scenarios.Fault) (Inject, error) {
		w, err := capability[WAN](env, f, env.WAN, "WAN link (the source cluster must be embedded)", "shape traffic")
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, a *Act) (Recover, error) { return shapeWAN(ctx, a, w, f), nil }, nil
	},
}

func shapeWAN(ctx context.Context, a *Act, w WAN, f scenarios.Fault) Recover {
	p := f.Params
	switch f.Kind {
	case scenarios.WANLatency:
		w.SetLatency(p.Latency.D(), p.Jitter.D())
		a.Did("WAN latency %s one way, jitter %s", p.Latency, p.Jitter)
		return func(context.Context) error { w.SetLatency(0, 0); a.Did("WAN latency removed"); return nil }
	case scenarios.WANBandwidth:
		w.SetBandwidth(p.BytesPerSecond)
		a.Did("WAN capped at %d bytes/s", p.BytesPerSecond)
		return func(context.Context) error { w.SetBandwidth(0); a.Did("WAN cap lifted"); return nil }
	case scenarios.WANPartition:
		w.SetPartition(true)
		a.Did("WAN partitioned (blackhole)")
		return func(context.Context) error { w.SetPartition(false); a.Did("WAN healed"); return nil }
	case scenarios.WANStall:
		stall := p.Stall.D()
		if stall == 0 {
			stall = time.Second
		}
		w.SetStall(p.Percent, stall)
		a.Did("WAN stalls: %g%% of writes wait %s", p.Percent, stall)
		return func(context.Context) error { w.SetStall(0, 0); a.Did("WAN stalls off"); return nil }
	default: // WANReset
		return resetWAN(ctx, a, w, f)
	}
}

// resetWAN resets every mirror connection now and then each `every` until
// the window ends (once, when every is unset).
func resetWAN(ctx context.Context, a *Act, w WAN, f scenarios.Fault) Recover {
	every := f.Params.Every.D()
	if every <= 0 {
		every = f.Duration.D() + time.Hour // once, at the start
	}
	var total counter
	total.add(w.ResetConnections())
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				total.add(w.ResetConnections())
			}
		}
	}()
	return func(context.Context) error {
		cancel()
		<-done
		a.Did("reset %d WAN connections in all", total.get())
		return nil
	}
}
