package main

import (
	"context"
	"fmt"
	"io"
)

// runScan is replaced by the detector work.
func runScan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "rootwarden scan: not built yet")
	return 2
}
