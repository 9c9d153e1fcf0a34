package podidentity_test

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// BenchmarkNode100Pods10Identities is one node's bridge serving 100 pods of 10 identities (ten replicas
// each), against the fake agent and the emulator in the same process. It reports the p99 latency of a
// pod's first request (token check, Delegated Identity stream, SVID, and for the first pod of an
// identity its CreateSession), the p99 of a cached request, the CreateSession calls, and the Go heap
// and the process's resident memory after serving them (the fake agent and the emulator included).
//
//	go test -run '^$' -bench Node100Pods -benchtime 2000x ./podidentity/
func BenchmarkNode100Pods10Identities(b *testing.B) {
	var ids []identity
	for i := range 10 {
		ids = append(ids, identity{"team" + strconv.Itoa(i), "app"})
	}
	w := newWorld(b, worldOptions{identities: ids, logger: hclog.NewNullLogger()})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	get := func(tok string) time.Duration {
		req, _ := http.NewRequest(http.MethodGet, w.url, nil)
		req.Header.Set("Authorization", tok)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
		return time.Since(start)
	}
	var tokens []string
	var first []time.Duration
	for p := range 100 {
		id := ids[p%10]
		_, tok := w.pod(id.ns, id.sa, fmt.Sprintf("%s-%d", id.ns, p))
		tokens = append(tokens, tok)
		first = append(first, get(tok))
	}
	b.ResetTimer()
	cached := make([]time.Duration, 0, b.N)
	for i := range b.N {
		cached = append(cached, get(tokens[i%len(tokens)]))
	}
	b.StopTimer()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(quantile(first, 0.5).Seconds()*1000, "first-p50-ms")
	b.ReportMetric(quantile(first, 0.99).Seconds()*1000, "first-p99-ms")
	b.ReportMetric(quantile(cached, 0.5).Seconds()*1000, "cached-p50-ms")
	b.ReportMetric(quantile(cached, 0.99).Seconds()*1000, "cached-p99-ms")
	b.ReportMetric(float64(w.creates()), "CreateSessions")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	b.ReportMetric(rssMiB(), "rss-MiB")
	if w.creates() != 10 || len(w.srv.States()) != 10 || w.srv.Pods() != 100 {
		b.Fatalf("%d CreateSession calls, %d sessions, %d pods; want 10, 10, 100", w.creates(), len(w.srv.States()), w.srv.Pods())
	}
}

// quantile is the q-quantile of d (nearest rank).
func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// rssMiB is the process's resident memory (VmRSS), 0 where /proc is absent.
func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
