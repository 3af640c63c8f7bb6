package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kmt-dev/kafka-mirror-tester/internal/gameday"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/history"
	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
)

// gamedayLatest is the link (in reports/) to the last game day's folder:
// what pause/resume/abort act on by default.
const gamedayLatest = "gameday-latest"

func newGamedayCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "gameday",
		Short: "Run an SRE game day from a run book (init, run, pause, resume, abort)",
		Long: `A game day runs ordered steps, each a hypothesis tested by injecting faults
into a mirror under load. Steady-state checks must hold before, during and
after each step; halt conditions are watched continuously, and when one
breaks every active fault is healed at once and the day stops with the
reason. An operator can pause, resume or abort it from another terminal.
The report (game-day.html and game-day.json) has a section per step and a
findings list to paste into a tracker.

Clusters: embedded (kmt starts two per step), external (yours: load and
checks, no injection) or kubernetes (each step's scenario chart installed
into two kube contexts as kmt cluster run does; a halt or an abort removes
the step's run by label, Chaos Mesh objects first).`,
	}
	c.AddCommand(newGamedayInitCmd(g), newGamedayRunCmd(g))
	for _, cmd := range []string{gameday.CmdPause, gameday.CmdResume, gameday.CmdAbort} {
		c.AddCommand(newGamedayControlCmd(g, cmd))
	}
	return c
}

func newGamedayInitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "init [FILE]",
		Short: "Write a run book template (default gameday.yaml) that runs as is on embedded clusters",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "gameday.yaml"
			if len(args) == 1 {
				path = args[0]
			}
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if errors.Is(err, fs.ErrExist) {
				return runner.Usage(fmt.Errorf("%s exists: give another file name (kmt gameday init NEW.yaml)", path))
			}
			if err != nil {
				return runner.Env(err)
			}
			defer f.Close()
			if _, err := f.WriteString(gameday.Template); err != nil {
				return runner.Env(err)
			}
			fmt.Fprintf(g.stdout, "wrote %s: edit it, then kmt gameday run %s\n", path, path)
			return nil
		},
	}
}

func newGamedayRunCmd(g *globals) *cobra.Command {
	var dir string
	c := &cobra.Command{
		Use:   "run BOOK.yaml",
		Short: "Run a game day; exit 0 when every hypothesis held, 1 when one did not or the day halted",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			book, err := gameday.Read(args[0])
			if err != nil {
				return runner.Usage(err)
			}
			if dir == "" {
				dir = filepath.Join(history.DefaultRoot, fmt.Sprintf("gameday-%s-%s", book.Metadata.Name, time.Now().UTC().Format("20060102T150405")))
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return runner.Env(err)
			}
			if err := linkLatest(dir); err != nil {
				log.Warn("could not update the gameday-latest link", "err", err)
			}
			res, err := gameday.Run(cmd.Context(), book, gameday.Options{Dir: dir, Progress: g.stderr, Logger: quietLogger(log)})
			if err != nil {
				return err
			}
			for _, f := range res.Findings {
				fmt.Fprintf(g.stdout, "- %s\n", f)
			}
			fmt.Fprintf(g.stdout, "game day %s: %s\nreport    %s\n", res.Name, res.Outcome, filepath.Join(dir, "game-day.html"))
			if res.Outcome != gameday.Held {
				return &exitError{runner.ExitFail}
			}
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "the game day's report folder (default reports/gameday-<name>-<time>)")
	return c
}

// linkLatest points reports/gameday-latest at dir when dir is in reports/.
func linkLatest(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	root, _ := filepath.Abs(history.DefaultRoot)
	if filepath.Dir(abs) != root {
		return nil
	}
	link := filepath.Join(root, gamedayLatest)
	tmp := link + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(filepath.Base(abs), tmp); err != nil {
		return err
	}
	return os.Rename(tmp, link)
}

func newGamedayControlCmd(g *globals, what string) *cobra.Command {
	var by, why string
	help := map[string]string{
		gameday.CmdPause:  "Hold a running game day before its next step (the current step finishes)",
		gameday.CmdResume: "Let a paused game day go on",
		gameday.CmdAbort:  "Stop a running game day now: every active fault is healed at once",
	}
	c := &cobra.Command{
		Use:   what + " [DIR]",
		Short: help[what],
		Long:  help[what] + ".\nDIR is the folder kmt gameday run printed (default reports/" + gamedayLatest + ").",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := filepath.Join(history.DefaultRoot, gamedayLatest)
			if len(args) == 1 {
				dir = args[0]
			}
			if by == "" {
				by = "unknown"
				if u, err := user.Current(); err == nil {
					by = u.Username
				}
			}
			if err := gameday.Send(dir, what, by, why); err != nil {
				return runner.Usage(err)
			}
			fmt.Fprintf(g.stdout, "sent %s to the game day in %s\n", what, dir)
			return nil
		},
	}
	c.Flags().StringVar(&by, "by", "", "who (default the user name)")
	c.Flags().StringVar(&why, "reason", "", "why, for the report")
	return c
}

// quietLogger keeps the steps' info lines off the terminal, where the game
// day's own progress goes (each step's kmt.log keeps them), unless debug.
func quietLogger(log *slog.Logger) *slog.Logger {
	if log.Enabled(context.Background(), slog.LevelDebug) {
		return log
	}
	return slog.New(warnOnly{log.Handler()})
}

type warnOnly struct{ slog.Handler }

func (w warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && w.Handler.Enabled(ctx, l)
}
func (w warnOnly) WithAttrs(a []slog.Attr) slog.Handler { return warnOnly{w.Handler.WithAttrs(a)} }
func (w warnOnly) WithGroup(n string) slog.Handler      { return warnOnly{w.Handler.WithGroup(n)} }
