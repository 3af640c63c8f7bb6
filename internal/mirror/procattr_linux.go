package mirror

import "syscall"

// procAttr puts the command in its own process group (so signals reach the
// whole pipeline) and asks Linux to SIGKILL the shell if kmt dies.
//
// Pdeathsig fires when the OS thread that forked the child exits; Go only
// retires threads whose goroutine exits while locked to them, which kmt
// never does, so in practice it fires when kmt's process dies. It covers
// the shell only: a pipeline's members are the shell's children and get no
// such signal (wrap a single command with exec to make it the shell).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
