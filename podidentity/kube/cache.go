package kube

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// tokenKey is a cache key: the SHA-256 of a token. The token itself is never kept.
type tokenKey [sha256.Size]byte

func keyOf(token string) tokenKey { return sha256.Sum256([]byte(token)) }

// result is a cached review: an identity, or the refusal.
type result struct {
	id      Identity
	err     *Error
	expires time.Time
}

// reviewCache is a size-bounded LRU of review results with per-entry expiry.
type reviewCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *cacheEntry, most recently used first
	byKey map[tokenKey]*list.Element
}

type cacheEntry struct {
	key tokenKey
	res result
}

func newReviewCache(max int) *reviewCache {
	return &reviewCache{max: max, order: list.New(), byKey: map[tokenKey]*list.Element{}}
}

// get returns the live entry for k; an expired one is removed.
func (c *reviewCache) get(k tokenKey, now time.Time) (result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[k]
	if !ok {
		return result{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.res.expires) {
		c.order.Remove(el)
		delete(c.byKey, k)
		return result{}, false
	}
	c.order.MoveToFront(el)
	return e.res, true
}

// put stores r under k (when it has life left), evicting the least recently used entry when full.
func (c *reviewCache) put(k tokenKey, r result, now time.Time) {
	if c.max <= 0 || !now.Before(r.expires) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		el.Value.(*cacheEntry).res = r
		c.order.MoveToFront(el)
		return
	}
	for c.order.Len() >= c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*cacheEntry).key)
	}
	c.byKey[k] = c.order.PushFront(&cacheEntry{key: k, res: r})
}

// dropPod removes every entry of the pod with this UID.
func (c *reviewCache) dropPod(uid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, el := range c.byKey {
		if el.Value.(*cacheEntry).res.id.PodUID == uid {
			c.order.Remove(el)
			delete(c.byKey, k)
		}
	}
}

// keys returns the cache's keys (for tests: they must be hashes, never tokens).
func (c *reviewCache) keys() []tokenKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]tokenKey, 0, len(c.byKey))
	for k := range c.byKey {
		out = append(out, k)
	}
	return out
}

func (c *reviewCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
