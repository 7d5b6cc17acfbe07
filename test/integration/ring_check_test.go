package integration

import "testing"

// The ring test's checkers find what they are for: calls of one object
// that overlap (on two replicas, on one, with a killed replica's call),
// last calls that did not see the final state or were cut short, slots not
// handed over, and rings out of balance.
func TestRingCheckers(t *testing.T) {
	ev := newEvents()
	for _, line := range []string{
		// u1: sequential calls on two replicas, no overlap.
		"S a u1 100 1 7 1", "E a u1 200 1 1",
		"S b u1 201 1 8 1", "E b u1 300 1 1",
		// u2: b starts while a's call runs.
		"S a u2 100 1 7 2", "S b u2 150 1 7 2", "E a u2 200 2 1", "E b u2 250 2 1",
		// u3: two calls on one replica at once.
		"S a u3 100 1 7 3", "S a u3 120 1 7 4", "E a u3 130 4 1", "E a u3 140 3 1",
		// u4: the last call was cut short.
		"S b u4 100 1 9 3", "E b u4 110 3 0",
		// u5 and u6: c is killed mid-call; b's call of u5 starts after
		// it was reaped, of u6 before.
		"S c u5 100 1 9 1", "S c u6 100 1 9 2",
		"S b u5 600 1 9 4", "E b u5 700 4 1",
		"S b u6 400 1 9 5", "E b u6 450 5 1",
	} {
		ev.add(line)
	}
	ev.killed("c", 500)
	if n, first := ev.overlaps(); n != 3 {
		t.Errorf("overlaps: %d pairs (first %s), want 3 (u2, u3, u6)", n, first)
	}
	final := map[string]string{"u1": "8", "u2": "8", "u4": "9", "u5": "9", "u7": "1"}
	if n, example := ev.notFinal(final); n != 3 {
		t.Errorf("notFinal: %d (e.g. %s), want 3 (u2 saw 7, u4 cut short, u7 never handled)", n, example)
	}
	if n := ev.handled(150); n["b"] != 3 || n["a"] != 0 {
		t.Errorf("handled after 150: %v, want b 3, a 0", n)
	}

	w := &slotWatch{slots: 4, history: [][]holding{
		{{10, "a"}, {110, ""}, {130, "b"}},
		{{10, "a"}, {120, "c"}},
		{{10, "b"}},
		{{10, "c"}},
	}}
	if d, ok := w.handedOver("a", 100); !ok || d != 30 {
		t.Errorf("handedOver(a, 100) = %v, %v; want 30ns, true", d, ok)
	}
	if _, ok := w.handedOver("b", 140); ok {
		t.Error("handedOver(b, 140) reports b's slots taken, none was")
	}
	if d, ok := w.handedOver("d", 100); !ok || d != 0 {
		t.Errorf("handedOver of a replica holding nothing = %v, %v; want 0, true", d, ok)
	}
	if ok, why := w.balanced([]string{"b", "c"}); !ok {
		t.Errorf("b 2, c 2 of 4 slots: not balanced: %s", why)
	}
	if ok, _ := w.balanced([]string{"b", "c", "d"}); ok {
		t.Error("b 2, c 2, d 0 of 4 slots (share 1.33 ± 1): balanced")
	}
	if ok, _ := w.balanced([]string{"b"}); ok {
		t.Error("slots held by c, not live: balanced")
	}
	w.history[1] = append(w.history[1], holding{200, "b"})
	w.history[3] = append(w.history[3], holding{200, "b"})
	if ok, _ := w.balanced([]string{"b", "c"}); ok {
		t.Error("b 4, c 0 of 4 slots: balanced")
	}
}
