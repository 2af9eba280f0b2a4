// Package notifications is the notifications module: the e-mail a customer
// gets about their orders (placed, paid, shipped with the tracking link,
// delivered, cancelled, refunded), the staff alerts (low stock, one per SKU
// per hour; dead letters), and the customers' notification preferences.
//
// It owns notifications_messages (every message decided on: customer, kind,
// order, status queued/sent/failed/skipped, attempts, last error, sent_at)
// and notifications_preferences (locale en or zh-CN, marketing opt-in).
//
// The consumer notifications_orders records a message in its own unit
// (rendered from the embedded text/template and html/template templates of
// the customer's locale) and sends nothing. What it costs the writer is
// small: the messages of one transaction are inserted by one multi-row
// INSERT at its commit (sqldb.AtCommit), order.placed's mail is made from
// the event alone (no read of the order), and the customers' preferences
// are cached in the process (dropped at a change's commit, and on
// PostgreSQL by its notification through the process's notify hub). The job notifications.send sends
// the due messages over SMTP outside any transaction and records each
// outcome in a unit of its own: sent, or a retry with exponential backoff
// after a 4xx answer or a network fault, or failed after a 5xx answer or the
// last attempt. Without SMTP configured a message is recorded as skipped and
// nothing is pending (API.md: a consumer whose outside party is not
// configured records the skip and holds nothing pending). The sender claims
// each message with a conditional write before it sends, so concurrent runs
// send a message once. The job notifications.dead_letters alerts the staff
// address, once per hour, while events are parked in the inbox.
//
// Routes: GET/PUT /api/v1/me/notification-preferences (the customer's),
// GET /api/v1/admin/notifications?customer_id=&status= (notifications.read:
// customer service and operators). Privacy: the export lists a customer's
// messages (kind, order, status, dates — never bodies); erasure deletes
// them and the preferences. It emits no events.
package notifications

import (
	"embed"

	"mercato/internal/platform/migrate"
)

//go:embed migrations
var migrations embed.FS

// Migrations is the module's schema.
func Migrations() migrate.Source { return migrate.Embedded("notifications", migrations) }
