package detector

import (
	"fmt"
	"testing"
	"time"
)

func TestNegativeCacheIsBoundedAndExpires(t *testing.T) {
	c := newCaches()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for i := range 3 * unknownMax {
		c.markUnknown(fmt.Sprintf("%012d", i), now.Add(time.Duration(i)*time.Millisecond))
	}
	if n := len(c.unknown); n > unknownMax {
		t.Fatalf("%d ids cached, want at most %d", n, unknownMax)
	}
	newest := fmt.Sprintf("%012d", 3*unknownMax-1)
	if !c.isUnknown(newest, now.Add(time.Minute)) {
		t.Fatal("the newest unknown id was forgotten")
	}
	if c.isUnknown(newest, now.Add(unknownTTL+time.Minute)) {
		t.Fatal("an unknown id is still cached after unknownTTL")
	}
	c.markUnknown("111111111111", now.Add(2*unknownTTL))
	if n := len(c.unknown); n != unknownMax {
		t.Fatalf("%d ids cached", n)
	}
}
