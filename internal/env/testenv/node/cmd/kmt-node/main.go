// Command kmt-node starts the single-machine Kubernetes node of package
// node for people who want to poke at it (`make k8s-node-up`), and tears it
// down (`make k8s-node-down`).
//
//	kmt-node up   [--dir D] [--kafka=false]   start in the background; prints the kubeconfig
//	kmt-node down [--dir D]   stop it and remove everything it left
//	kmt-node build            build what the node runs into the cache (warm-up)
//
// up returns once the node is Ready; the node keeps running in a background
// process (its pid in D/pid, its log in D.log) until down sends it SIGTERM.
// down also sweeps a node whose background process died (processes,
// mounts, the pod bridge, D).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/kafkadist"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/testenv/node"
)

// envServe marks the background process that runs the node.
const envServe = "KMT_NODE_SERVE"

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", filepath.Join(os.TempDir(), "kmt-node"), "the node's folder (everything it writes or mounts is under it)")
	kafka := fs.Bool("kafka", true, "up: also import the Kafka image (assembling the Kafka libs from Maven Central when missing)")
	_ = fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "up":
		if os.Getenv(envServe) != "" {
			err = serve(*dir, *kafka)
		} else {
			err = up(*dir, *kafka)
		}
	case "down":
		err = down(*dir)
	case "build":
		_, err = node.EnsureBuilt(context.Background(), slog.New(slog.NewTextHandler(os.Stderr, nil)), true)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kmt-node %s: %v\n", os.Args[1], err)
		os.Exit(3)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kmt-node up|down|build [--dir D]")
	os.Exit(2)
}

// up starts `kmt-node up` again as a background process (its own session,
// output in D.log) and waits until it reports the node Ready (D/ready) or
// dies.
func up(dir string, kafka bool) error {
	if pid, alive := running(dir); alive {
		return fmt.Errorf("a node is already up in %s (pid %d): run `make k8s-node-down` first", dir, pid)
	}
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("%s exists from an earlier node: run `make k8s-node-down` to sweep it", dir)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	logPath := dir + ".log"
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(self, "up", "--dir", dir, fmt.Sprintf("--kafka=%t", kafka))
	cmd.Env = append(os.Environ(), envServe+"=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the background node process: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	fmt.Printf("starting the node in %s (log %s); the first run builds Kubernetes (minutes)\n", dir, logPath)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("the node process ended (%v) before the node was Ready; see %s", err, logPath)
		case <-time.After(time.Second):
		}
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			images := []string{node.KmtImage, node.PauseImage}
			if kafka {
				images = append(images, node.KafkaImage)
			}
			fmt.Printf("node %s is Ready (pid %d)\n  export KUBECONFIG=%s\n  kubectl get nodes\nimages: %s (imagePullPolicy: Never)\nstop it with: make k8s-node-down\n",
				node.NodeName, cmd.Process.Pid, filepath.Join(dir, "kubeconfig"), strings.Join(images, ", "))
			return nil
		}
	}
}

// serve runs the node in the background process until SIGTERM/SIGINT.
func serve(dir string, kafka bool) error {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	n, err := node.Start(ctx, node.Options{Dir: dir, Logger: logger})
	if err != nil {
		return err
	}
	if kafka {
		if err := importKafka(ctx, n, logger); err != nil {
			return errors.Join(err, n.Stop())
		}
	}
	writeErr := errors.Join(
		os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o644),
		os.WriteFile(filepath.Join(dir, "ready"), nil, 0o644))
	if writeErr == nil {
		<-ctx.Done()
		logger.Info("stopping the node")
	}
	return errors.Join(writeErr, n.Stop())
}

// importKafka imports the Kafka image (Debian's JRE + the Kafka libs).
func importKafka(ctx context.Context, n *node.Node, logger *slog.Logger) error {
	dist, err := kafkadist.Ensure(ctx, kafkadist.Version, logger)
	if err != nil {
		return err
	}
	spec, err := node.KafkaImageSpec(node.DebianJRE, dist.Libs)
	if err != nil {
		return err
	}
	return n.ImportImage(ctx, spec)
}

// down stops the background process (SIGTERM: it tears the node down),
// then sweeps whatever is left and reports what could not be removed.
func down(dir string) error {
	if pid, alive := running(dir); alive {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(3 * time.Minute)
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond)
		}
	}
	if err := node.Sweep(dir); err != nil {
		return err
	}
	if left := node.Leftovers(dir); len(left) > 0 {
		return fmt.Errorf("still present after teardown:\n  %s", strings.Join(left, "\n  "))
	}
	_ = os.Remove(dir + ".log")
	fmt.Println("node down; nothing left in", dir)
	return nil
}

func running(dir string) (int, bool) {
	data, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return 0, false
	}
	return pid, syscall.Kill(pid, 0) == nil
}
