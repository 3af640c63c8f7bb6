// Command gencharts regenerates charts/<scenario>/ for every catalogue
// scenario (run from the repository root).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kmt-dev/kafka-mirror-tester/internal/kube/charts"
)

func main() {
	root := flag.String("root", "charts", "the charts folder (holding kmt-lib)")
	flag.Parse()
	if err := charts.Generate(*root); err != nil {
		fmt.Fprintln(os.Stderr, "gencharts:", err)
		os.Exit(1)
	}
}
