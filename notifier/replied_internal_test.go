package notifier

import "testing"

func TestRepliesAreTrackedPerEvent(t *testing.T) {
	var r record
	r.markReplied(1) // the opening
	r.RenderedSeq = 1
	r.markReplied(3) // a click's event went ahead of seq 2
	r.RenderedSeq = 3
	if r.replied(2) || !r.replied(3) || !r.replied(1) {
		t.Fatalf("after 1 and 3: %+v", r)
	}
	r.markReplied(2) // the older event came late
	if !r.replied(2) || r.RepliedUpTo != 3 || r.Replied != nil {
		t.Errorf("after 1, 3, 2: up to %d, set %v; want up to 3 and an empty set", r.RepliedUpTo, r.Replied)
	}
	// An event that never comes leaves a gap; the set stays bounded.
	for seq := 5; seq < 5+3*maxReplied; seq++ {
		r.markReplied(seq)
	}
	if len(r.Replied) > maxReplied {
		t.Errorf("replied set = %d seqs, want at most %d", len(r.Replied), maxReplied)
	}
	if !r.replied(5 + 3*maxReplied - 1) {
		t.Error("the newest reply is not recorded")
	}
	// A record saved before replies were tracked per event: rendered means replied.
	legacy := record{RenderedSeq: 7}
	if !legacy.replied(7) || legacy.replied(8) {
		t.Errorf("legacy record: replied(7)=%v replied(8)=%v", legacy.replied(7), legacy.replied(8))
	}
	legacy.markReplied(9)
	if !legacy.replied(6) || legacy.replied(8) || !legacy.replied(9) {
		t.Errorf("legacy record after 9: %+v", legacy)
	}
}
