package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Shared is one API server for a whole test package: the first test that
// needs it starts it (Get), and the package's TestMain stops it after every
// test ran (Main). Starting one per test would cost seconds each.
type Shared struct {
	Options Options

	once sync.Once
	env  *Env
	err  error
}

// Get returns the package's API server, starting it on first use; it skips
// the test under -short and fails it when the server cannot start.
func (s *Shared) Get(t testing.TB) *Env {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real kube-apiserver (internal/env/testenv)")
	}
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		s.env, s.err = New(ctx, s.Options)
	})
	if s.err != nil {
		t.Fatalf("testenv: %v", s.err)
	}
	return s.env
}

// Main is a TestMain's whole body: run the tests, stop the server if one
// started, exit with the tests' code.
func (s *Shared) Main(m *testing.M) {
	code := m.Run()
	if s.env != nil {
		if err := s.env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: stopping the shared API server: %v\n", err)
		}
	}
	os.Exit(code)
}

var nsSeq atomic.Int64

// Namespace creates a namespace no other test of this process uses
// (prefix-N) with the given labels, and returns its name. Namespaces go
// with the API server.
func (e *Env) Namespace(t testing.TB, prefix string, labels map[string]string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, nsSeq.Add(1))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := e.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	return name
}
