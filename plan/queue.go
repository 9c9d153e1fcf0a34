package plan

import "time"

// kind is what an event does to its bridge.
type kind uint8

const (
	// evBoot: the bridge starts and receives its first SVID.
	evBoot kind = iota
	// evRotate: the bridge's agent delivers a new SVID (a half-life rotation or the restart).
	evRotate
	// evTimer: the refresher's timer fires for the schedule's Next (stale when gen differs).
	evTimer
	// evDone: a CreateSession call returns.
	evDone
	// evExpire: the workload's current credentials run out (stale when gen differs).
	evExpire
)

// event is one entry of the simulation's agenda. Events at the same instant run in the order they were
// scheduled (seq), which makes a run a pure function of its Options.
type event struct {
	at     time.Duration // virtual time since the start of the run
	seq    uint64
	bridge int32
	gen    uint32
	kind   kind
}

// agenda is a min-heap of events ordered by (at, seq); it implements container/heap.Interface.
type agenda []event

func (a agenda) Len() int { return len(a) }

func (a agenda) Less(i, j int) bool {
	if a[i].at != a[j].at {
		return a[i].at < a[j].at
	}
	return a[i].seq < a[j].seq
}

func (a agenda) Swap(i, j int) { a[i], a[j] = a[j], a[i] }

func (a *agenda) Push(x any) { *a = append(*a, x.(event)) }

func (a *agenda) Pop() any {
	old := *a
	e := old[len(old)-1]
	*a = old[:len(old)-1]
	return e
}
