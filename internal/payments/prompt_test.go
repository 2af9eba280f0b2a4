package payments

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"

	"mercato/internal/platform/sqldb"
)

// laneRecorder is a sqldb.Committer that records, for each unit it runs,
// whether it was marked Prompt and how many pending attempts were durable
// once it had committed.
type laneRecorder struct {
	sqldb.Committer
	db *sqldb.DB
	mu sync.Mutex
	// units: "prompt" or "ordinary", and for a prompt unit the pending
	// attempts counted after its commit ("prompt:1").
	units []string
}

func (c *laneRecorder) Do(ctx context.Context, fn func(*sqldb.Tx) error) error {
	return c.Run(ctx, sqldb.Unit{Run: fn})
}

func (c *laneRecorder) Run(ctx context.Context, u sqldb.Unit) error {
	err := c.Committer.Run(ctx, u)
	what := "ordinary"
	if u.Prompt {
		var n int
		if qerr := c.db.Reader().QueryRowContext(ctx, `SELECT count(*) FROM payments_attempts WHERE status = 'pending'`).Scan(&n); qerr != nil {
			return qerr
		}
		what = "prompt:" + strconv.Itoa(n)
	}
	c.mu.Lock()
	c.units = append(c.units, what)
	c.mu.Unlock()
	return err
}

func (c *laneRecorder) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.units
	c.units = nil
	return u
}

// TestWriteAheadPrompt: of the payments module's units in a pay, the
// attempt's write-ahead — and only it — goes in the batcher's prompt
// lane, and it is the unit that makes the pending attempt durable before
// the provider is called. The capture commits in the orders module's
// unit (its own committer, ordinary); a decline's record is an ordinary
// unit of the module's: the request ends with it.
func TestWriteAheadPrompt(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		rec := &laneRecorder{Committer: e.svc.write, db: e.db}
		e.svc.write = rec // before any pay: the requests below happen after
		for _, tc := range []struct {
			token  string
			status int
			want   []string
		}{
			{"tok_success", http.StatusOK, []string{"prompt:1"}},
			{"tok_decline", http.StatusPaymentRequired, []string{"prompt:1", "ordinary"}},
		} {
			id := e.order(e.as("alice"), 1)
			rec.take()
			r := e.as("alice").Do("POST", "/api/v1/orders/"+id+"/pay", map[string]any{"method": "sandbox", "token": tc.token})
			r.WantStatus(t, tc.status)
			if got := rec.take(); !slices.Equal(got, tc.want) {
				t.Errorf("%s: the payments module's units %v, want %v", tc.token, got, tc.want)
			}
		}
	})
}
