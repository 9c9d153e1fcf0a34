// Package logtest captures what code under test logs, for assertions on log lines and for the secret
// hygiene checks (no key, secret or token may appear in any log).
package logtest

import (
	"bytes"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// Buffer is a goroutine-safe io.Writer that keeps everything written to it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// New returns a trace-level logger writing into a new Buffer.
func New() (hclog.Logger, *Buffer) {
	buf := &Buffer{}
	return hclog.New(&hclog.LoggerOptions{Output: buf, Level: hclog.Trace}), buf
}
