package syncmon

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"mercato/internal/platform/inbox"
	"mercato/internal/platform/outbox"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
	"mercato/internal/webhooks"
)

type counts struct {
	st  webhooks.SyncStatus
	err error
}

func (c counts) Status(context.Context) (webhooks.SyncStatus, error) { return c.st, c.err }

// The status carries the webhook endpoints' counts when a source is given,
// an empty list otherwise, and fails with the source.
func TestStatusWithWebhooks(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		m := inbox.NewMonitor(db, nil) // no consumer has run: the bus is not asked
		ep := webhooks.EndpointStatus{EndpointID: "e1", Kind: webhooks.KindWebhook, URL: "https://erp.example/h", Enabled: true, Pending: 3, Failed: 1, Dead: 2}
		tests := []struct {
			name    string
			mon     *Monitor
			want    string
			wantErr bool
		}{
			{"without webhooks", New(m), `[]`, false},
			{"with webhooks", New(m).WithWebhooks(counts{st: webhooks.SyncStatus{Endpoints: []webhooks.EndpointStatus{ep}}}),
				`[{"endpoint_id":"e1","kind":"webhook","url":"https://erp.example/h","enabled":true,"pending":3,"failed":1,"dead":2}]`, false},
			{"webhooks failing", New(m).WithWebhooks(counts{err: errors.New("down")}), "", true},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				st, err := tc.mon.Status(ctx)
				if (err != nil) != tc.wantErr {
					t.Fatalf("Status: %v, want error %v", err, tc.wantErr)
				}
				if tc.wantErr {
					return
				}
				b, _ := json.Marshal(st)
				var got struct {
					Webhooks  json.RawMessage `json:"webhooks"`
					Consumers json.RawMessage `json:"consumers"`
				}
				json.Unmarshal(b, &got)
				if string(got.Webhooks) != tc.want || string(got.Consumers) != "[]" {
					t.Fatalf("status %s", b)
				}
			})
		}
	}, inbox.Migrations(), outbox.Migrations())
}
