package sqldb

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Params writes n bind parameters to b, separated by ", ", the first
// numbered from: "$3, $4, $5" on PostgreSQL, "?, ?, ?" on SQLite. Long
// statements (a multi-row INSERT, an UPDATE … FROM VALUES) use it: the
// SQLite driver binds a numbered parameter by a linear search of the
// statement's parameter names — quadratic in a statement of thousands — and
// a "?" by its position. So the arguments must follow the parameters'
// order in the statement, each parameter used once (a value needed twice is
// passed twice). Short statements keep "$n" text, shared by both engines.
func Params(e Engine, b *strings.Builder, from, n int) {
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		if e == SQLite {
			b.WriteByte('?')
		} else {
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(from + i))
		}
	}
}

// JSONTable returns a subquery that reads the bind parameter param (e.g.
// "$2") as a table: the parameter is a JSON array of rows, each row an
// array of values in the order of cols, each col "name type" with a
// PostgreSQL type (text, bigint; SQLite takes the JSON value's own type).
// A statement that takes a variable number of rows this way — an IN list, a
// multi-row INSERT … SELECT — keeps one text whatever the number, so it is
// parsed once per connection (SQLite's kept statements, pgx's statement
// cache) instead of once per call; encode the rows with JSONRows.
func JSONTable(e Engine, param string, cols ...string) string {
	var b strings.Builder
	b.WriteString("(SELECT ")
	for i, c := range cols {
		name, typ, _ := strings.Cut(c, " ")
		if i > 0 {
			b.WriteString(", ")
		}
		n := strconv.Itoa(i)
		if e == SQLite {
			b.WriteString("value->>" + n + " AS " + name)
		} else {
			b.WriteString("(r->>" + n + ")::" + typ + " AS " + name)
		}
	}
	if e == SQLite {
		b.WriteString(" FROM json_each(" + param + "))")
	} else {
		b.WriteString(" FROM jsonb_array_elements(" + param + "::jsonb) AS r)")
	}
	return b.String()
}

// JSONRows encodes rows for a JSONTable parameter. Values are strings and
// integers (int64 fits: PostgreSQL parses the text, SQLite's JSON keeps
// 64-bit integers).
func JSONRows(rows [][]any) (string, error) {
	if rows == nil {
		return "[]", nil
	}
	b, err := json.Marshal(rows)
	return string(b), err
}
