package tracker

import (
	"strings"
	"sync"
	"testing"

	"github.com/rootwarden/rootwarden/internal/bus/bustest"
	"github.com/rootwarden/rootwarden/internal/model"
)

func TestBuiltinOpenIsIdempotentUnderConcurrency(t *testing.T) {
	b := bustest.New(t)
	tr := NewBuiltin(b)
	tr2 := NewBuiltin(bustest.Connect(t, b))
	ctx := ctxT(t)
	refs := make([]model.TicketRef, 8)
	var wg sync.WaitGroup
	for i := range refs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			x := tr
			if i%2 == 1 {
				x = tr2
			}
			ref, err := x.Open(ctx, testCase("222222222222-1"), "https://slack.example/p")
			if err != nil {
				t.Error(err)
			}
			refs[i] = ref
		}(i)
	}
	wg.Wait()
	for _, r := range refs {
		if r != refs[0] || r.System != "builtin" || !strings.HasPrefix(r.ID, "RW-") {
			t.Fatalf("refs differ: %+v", refs)
		}
	}
	other, err := tr.Open(ctx, testCase("222222222222-2"), "")
	if err != nil || other.ID == refs[0].ID {
		t.Fatalf("second case: %+v %v", other, err)
	}
	all, err := tr.List(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("tickets %d %v", len(all), err)
	}
	if !strings.Contains(all[0].Body, AWSGuideURL) || all[0].Label != Label(all[0].CaseID) {
		t.Errorf("ticket %+v", all[0])
	}
}

func TestBuiltinLifecycle(t *testing.T) {
	b := bustest.New(t)
	tr := NewBuiltin(b)
	ctx := ctxT(t)
	ref, err := tr.Open(ctx, testCase("222222222222-1"), "")
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := tr.Status(ctx, ref); st.Done {
		t.Fatal("new ticket done")
	}
	if err := tr.MarkDone(ctx, ref.ID, "dave"); err != nil {
		t.Fatal(err)
	}
	if st, _ := tr.Status(ctx, ref); !st.Done || st.Assignee != "dave" {
		t.Fatalf("status %+v", st)
	}
	if err := tr.Reopen(ctx, ref, "still there"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(ctx, ref, "resolved"); err != nil {
		t.Fatal(err)
	}
	tk, _, _ := tr.Get(ctx, ref.ID)
	if tk.State != "done" || len(tk.Comments) != 2 || tk.Comments[0].Text != "still there" {
		t.Fatalf("ticket %+v", tk)
	}
	if _, err := tr.Status(ctx, model.TicketRef{ID: "RW-999"}); model.ErrorCode(err) != model.CodeNotFound {
		t.Fatalf("unknown ticket: %v", err)
	}
}
