package sqldb

// NotifySQL is the statement that sends payload ($1) on the channel of name
// in the current schema, inside the caller's transaction: PostgreSQL
// delivers it when the transaction commits, not before, and not at all when
// it rolls back. A process hears it through its notify.Hub.
func NotifySQL(name string) string {
	return `SELECT pg_notify('mercato_` + name + `.' || current_schema(), $1)`
}
