package main

import "github.com/kmt-dev/kafka-mirror-tester/internal/report"

// Every report names the kmt that wrote it (main.version comes from -ldflags).
func init() { report.Version = version }
