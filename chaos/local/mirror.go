package local

import (
	"context"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// mirrorFaults: mirror-kill (hard, no final commit), mirror-restart
// (graceful stop) and mirror-pause (frozen) take the mirror out and bring
// it back when the window ends. Needs MirrorKiller / MirrorStopper /
// MirrorPauser. Mirror state changes of overlapping faults (a purge stops
// the mirror too) are serialised.
var mirrorFaults = Family{
	Name:  "mirror",
	Kinds: []scenarios.FaultKind{scenarios.MirrorKill, scenarios.MirrorRestart, scenarios.MirrorPause},
	Plan:  planMirror,
}

func planMirror(env Env, f scenarios.Fault) (Inject, error) {
	switch f.Kind {
	case scenarios.MirrorKill:
		m, err := capability[MirrorKiller](env, f, env.Mirror, "mirror", "be killed")
		if err != nil {
			return nil, err
		}
		kill := func(context.Context) error { return m.Kill() }
		return mirrorToggle("killed the mirror (hard)", "started the mirror again", kill, m.Start), nil
	case scenarios.MirrorRestart:
		m, err := capability[MirrorStopper](env, f, env.Mirror, "mirror", "be stopped gracefully")
		if err != nil {
			return nil, err
		}
		return mirrorToggle("stopped the mirror gracefully", "started the mirror again", m.Stop, m.Start), nil
	default:
		m, err := capability[MirrorPauser](env, f, env.Mirror, "mirror", "be paused")
		if err != nil {
			return nil, err
		}
		pause := func(context.Context) error { return m.Pause() }
		resume := func(context.Context) error { return m.Resume() }
		return mirrorToggle("paused the mirror", "resumed the mirror", pause, resume), nil
	}
}

// mirrorToggle takes the mirror out with do and back with undo, each under
// the mirror lock.
func mirrorToggle(did, undid string, do, undo func(context.Context) error) Inject {
	return func(ctx context.Context, a *Act) (Recover, error) {
		unlock := a.LockMirror()
		defer unlock()
		recover := func(ctx context.Context) error {
			unlock := a.LockMirror()
			defer unlock()
			if err := undo(ctx); err != nil {
				return err
			}
			a.Did("%s", undid)
			return nil
		}
		if err := do(ctx); err != nil {
			// The mirror may be half down (a stop that timed out): starting
			// or resuming a running mirror is harmless, so undo still runs.
			return recover, err
		}
		a.Did("%s", did)
		return recover, nil
	}
}
