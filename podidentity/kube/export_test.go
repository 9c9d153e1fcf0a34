package kube

import "fmt"

// CacheKeys returns the keys of r's review cache, for tests that check what it holds.
func CacheKeys(r *Reviewer) [][32]byte {
	var out [][32]byte
	for _, k := range r.cache.keys() {
		out = append(out, k)
	}
	return out
}

// CacheDump returns every cached result, formatted with %#v, for tests that look for a token in them.
func CacheDump(r *Reviewer) []string {
	r.cache.mu.Lock()
	defer r.cache.mu.Unlock()
	var out []string
	for el := r.cache.order.Front(); el != nil; el = el.Next() {
		out = append(out, fmt.Sprintf("%#v", *el.Value.(*cacheEntry)))
	}
	return out
}
