package sqldbtest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"testing"

	"mercato/internal/platform/sqldb"
)

// AssertNoSecret fails t when any column of any row of table holds one of
// secrets — as it is, in hex or in base64 (standard or URL-safe), in any
// case — or one of digests, raw or in hex: the check that a copy of the
// database yields none of them. table comes from the test's code.
func AssertNoSecret(t testing.TB, db *sqldb.DB, table string, secrets []string, digests [][]byte) {
	t.Helper()
	var needles [][]byte
	for _, s := range secrets {
		b := []byte(s)
		needles = append(needles, b, []byte(hex.EncodeToString(b)),
			[]byte(base64.StdEncoding.EncodeToString(b)), []byte(base64.RawURLEncoding.EncodeToString(b)))
	}
	for _, d := range digests {
		needles = append(needles, d, []byte(hex.EncodeToString(d)))
	}
	rows, err := db.Reader().Query(`SELECT * FROM ` + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			raw, ok := v.([]byte)
			if !ok {
				raw = fmt.Append(nil, v)
			}
			for _, n := range needles {
				if len(n) > 0 && bytes.Contains(bytes.ToLower(raw), bytes.ToLower(n)) {
					t.Errorf("%s.%s holds %.16q…", table, cols[i], n)
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
