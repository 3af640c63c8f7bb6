package runner

import (
	"errors"
)

// Exit codes of kmt (see README).
const (
	ExitPass    = 0
	ExitFail    = 1
	ExitUsage   = 2 // bad flags or a bad scenario file
	ExitEnv     = 3 // could not run: unreachable cluster, missing tool, interrupted
	exitDefault = ExitEnv
)

// UsageError is a problem with what the user asked for (exit 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// EnvError means kmt could not run in this environment (exit 3).
type EnvError struct{ Err error }

func (e *EnvError) Error() string { return e.Err.Error() }
func (e *EnvError) Unwrap() error { return e.Err }

// Usage wraps err as a UsageError.
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return &UsageError{err}
}

// Env wraps err as an EnvError.
func Env(err error) error {
	if err == nil {
		return nil
	}
	return &EnvError{err}
}

// ExitCode maps an error from this package to kmt's exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitPass
	}
	var u *UsageError
	if errors.As(err, &u) {
		return ExitUsage
	}
	return exitDefault
}
