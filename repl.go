// The client's terminal UI: the handshake walk-through and the readline REPL.

package main

import (
	"context"
	"io"
)

func runClient(ctx context.Context, o clientOptions, stdin io.Reader, stdout, stderr io.Writer) int {
	return 1
}
