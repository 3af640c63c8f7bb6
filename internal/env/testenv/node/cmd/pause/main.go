// Command pause is the pod sandbox process of the kmt test node: it holds
// the pod's namespaces open and exits on SIGTERM/SIGINT. containerd needs a
// sandbox image and nothing can be pulled on the machines kmt runs on, so the
// node harness builds this static binary into an image itself.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	// As PID 1 of a pod sharing its PID namespace, reap orphans so they do
	// not pile up as zombies.
	chld := make(chan os.Signal, 16)
	signal.Notify(chld, syscall.SIGCHLD)
	for {
		select {
		case <-sig:
			os.Exit(0)
		case <-chld:
			for {
				pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}
