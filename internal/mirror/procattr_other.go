//go:build !linux

package mirror

import "syscall"

// procAttr puts the command in its own process group; there is no
// parent-death signal outside Linux.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
