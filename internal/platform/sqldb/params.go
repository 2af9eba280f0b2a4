package sqldb

import (
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
