package actor

import (
	"testing"
)

// Every member used since it took its place in the LRU list is still
// droppable: the cap must make room, not report ErrGroupFull.
func TestGroupCapEvictsWhenEveryMemberWasUsedSinceFiled(t *testing.T) {
	tg := newTestGroup[string](t, WithMaxBreakers(2))
	tg.get(t, "a")
	tg.get(t, "b")
	tg.step(t)
	tg.get(t, "a")
	tg.get(t, "b")
	if _, err := tg.Get("c"); err != nil {
		t.Fatalf("Get(c) with two healthy members: %v; want the least recently used dropped", err)
	}
	if k := tg.nextDropped(t); k != "a" {
		t.Fatalf("evicted %q, want a", k)
	}
}
