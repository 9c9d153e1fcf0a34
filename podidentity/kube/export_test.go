package kube

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// CacheKeys returns the keys of r's review cache, for tests that check what it holds.
func CacheKeys(r *Reviewer) [][32]byte {
	var out [][32]byte
	for _, k := range append(r.cache.keys(), r.refusals.keys()...) {
		out = append(out, k)
	}
	return out
}

// CacheDump returns every cached result, formatted with %#v, for tests that look for a token in them.
func CacheDump(r *Reviewer) []string {
	var out []string
	for _, c := range []*reviewCache{r.cache, r.refusals} {
		c.mu.Lock()
		for el := c.order.Front(); el != nil; el = el.Next() {
			out = append(out, fmt.Sprintf("%#v", *el.Value.(*cacheEntry)))
		}
		c.mu.Unlock()
	}
	return out
}

// SetArrival makes the informer call f with each pod before it stores it (a test holds a pod's arrival
// back, as a lagging watch does). Call it before Run.
func SetArrival(p *Pods, f func(uid, name string)) {
	p.arrival = func(pod *corev1.Pod) { f(string(pod.UID), pod.Name) }
}
