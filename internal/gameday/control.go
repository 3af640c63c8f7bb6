package gameday

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The control file of a running game day: another terminal writes one
// command into it (kmt gameday pause|resume|abort), the game day reads it
// a few times a second.
const ControlFile = "control"

// Commands.
const (
	CmdPause  = "pause"  // hold before the next step (a running step finishes)
	CmdResume = "resume" // go on
	CmdAbort  = "abort"  // heal every active fault now and stop
)

// Send writes cmd (with who and why) into dir's control file.
func Send(dir, cmd, by, why string) error {
	if _, err := os.Stat(filepath.Join(dir, resultJSON)); err == nil {
		return fmt.Errorf("the game day in %s already ended (its report is written); nothing to %s", dir, cmd)
	}
	if _, err := os.Stat(filepath.Join(dir, ControlFile)); err != nil {
		return fmt.Errorf("no running game day in %s (no %s file): give the folder kmt gameday run printed", dir, ControlFile)
	}
	line := fmt.Sprintf("%s\t%s\t%s\t%s\n", cmd, by, time.Now().UTC().Format(time.RFC3339), strings.ReplaceAll(why, "\n", " "))
	tmp := filepath.Join(dir, ControlFile+".tmp")
	if err := os.WriteFile(tmp, []byte(line), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, ControlFile))
}

// Control is one command read from the control file.
type Control struct {
	Cmd, By, Why string
}

// readControl returns the command in dir's control file ("" when none).
func readControl(dir string) Control {
	b, err := os.ReadFile(filepath.Join(dir, ControlFile))
	if err != nil {
		return Control{}
	}
	f := strings.SplitN(strings.TrimSpace(string(b)), "\t", 4)
	c := Control{Cmd: f[0]}
	if len(f) > 1 {
		c.By = f[1]
	}
	if len(f) > 3 {
		c.Why = f[3]
	}
	return c
}
