package notifier_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rootwarden/rootwarden/internal/model"
)

// An on-call person types the id the way everything else accepts it: the full id from
// the message, the short "<account>-<n>" that `rootwarden cases show` and `sim click`
// take, or just the account. Each names the case it means.
func TestSlashCaseTakesTheShortIDAndTheAccount(t *testing.T) {
	o := newOnCallEnv(t, false, nil)
	o.run()
	first := baseCase(account+"-1-tpp000", o.clock.Now())
	o.publish(first, model.EventOpened, "", model.System, "root access key found")
	o.rendered(first.ID, 1)
	first.State = model.StateResolved
	o.publish(first, model.EventResolved, model.StateOpen, model.System, "AWS reports no root access keys")
	o.rendered(first.ID, 2)
	second := baseCase(account+"-2-tpp100", o.clock.Now())
	second.Number = 2
	o.publish(second, model.EventOpened, "", model.System, "root access key found again")
	o.rendered(second.ID, 1)

	for _, tc := range []struct{ typed, want string }{
		{second.ID, "*Case `" + second.ID + "`*"},
		{account + "-2", "*Case `" + second.ID + "`*"},
		{account, "*Case `" + second.ID + "`*"},
		{account + "-1", "*Case `" + first.ID + "`*"},
		{first.ID, "*Case `" + first.ID + "`*"},
		{"999999999999", "no case for account 999999999999"},
		{account + "-7", "knows no case " + account + "-7"},
		{"22222222222", "is not a case id"},
	} {
		t.Run(tc.typed, func(t *testing.T) {
			status, m := o.command(outsider, "case "+tc.typed, "")
			if text := fmt.Sprint(m["text"]); status != 200 || !strings.Contains(text, tc.want) {
				t.Fatalf("/rootwarden case %s answered %d %q, want %q", tc.typed, status, text, tc.want)
			}
		})
	}
}
