package logtest

import (
	"strings"
	"sync"
	"testing"
)

func TestConcurrentLinesAreAllKept(t *testing.T) {
	log, buf := New()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log.Trace("line", "i", i)
		}()
	}
	wg.Wait()
	if n := strings.Count(buf.String(), "[TRACE] line: i="); n != 20 {
		t.Fatalf("%d of 20 lines kept:\n%s", n, buf.String())
	}
}
