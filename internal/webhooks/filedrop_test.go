package webhooks

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mercato/internal/platform/sqldb/sqldbtest"
)

// readDir lists a directory's entries: the closed files and the hidden
// temporary ones.
func readDir(t *testing.T, dir string) (closed, temp []string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			temp = append(temp, e.Name())
		} else {
			closed = append(closed, e.Name())
		}
	}
	return closed, temp
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// TestFileDropRotation: a file grows under a hidden temporary name and
// appears under its final, sortable name only when closed — by size, by
// age (the fake clock), or at Close; a CSV file starts with its header.
func TestFileDropRotation(t *testing.T) {
	base := t.TempDir()
	clk := sqldbtest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	row := []byte(`{"event_id":"e","pad":"` + strings.Repeat("x", 80) + `"}` + "\n") // 100 bytes
	w := newDropWriter(base, "erp", FormatJSONL, nil, 250, time.Hour, clk.Now)
	dir := filepath.Join(base, "erp")
	for range 2 {
		if _, err := w.Append(row); err != nil {
			t.Fatal(err)
		}
	}
	if closed, temp := readDir(t, dir); len(closed) != 0 || len(temp) != 1 {
		t.Fatalf("while the first file is open: closed %v temp %v; want nothing closed, one temporary file", closed, temp)
	}
	// The third row would pass 250 bytes: the first file closes first.
	name, err := w.Append(row)
	if err != nil {
		t.Fatal(err)
	}
	closed, _ := readDir(t, dir)
	if want := []string{"erp-0000000001-20300102T030405Z.jsonl"}; !slices.Equal(closed, want) {
		t.Fatalf("after rotation by size: %v, want %v", closed, want)
	}
	if len(lines(t, filepath.Join(dir, closed[0]))) != 2 || name != "erp-0000000002-20300102T030405Z.jsonl" {
		t.Fatalf("first file %v; third row went to %s", lines(t, filepath.Join(dir, closed[0])), name)
	}
	// By age: not before the hour, then the job's Rotate closes it.
	clk.Advance(59 * time.Minute)
	if ok, err := w.Rotate(); ok || err != nil {
		t.Fatalf("Rotate before the hour: %v, %v", ok, err)
	}
	clk.Advance(time.Minute)
	if ok, err := w.Rotate(); !ok || err != nil {
		t.Fatalf("Rotate after the hour: %v, %v", ok, err)
	}
	// An append after an hour of silence opens the next file.
	clk.Advance(2 * time.Hour)
	if _, err := w.Append(row); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	closed, temp := readDir(t, dir)
	want := []string{"erp-0000000001-20300102T030405Z.jsonl", "erp-0000000002-20300102T030405Z.jsonl",
		"erp-0000000003-20300102T060405Z.jsonl"}
	if !slices.Equal(closed, want) || len(temp) != 0 || !slices.IsSorted(closed) {
		t.Fatalf("after Close: closed %v temp %v; want %v", closed, temp, want)
	}
	// A writer over the same directory (a restart) continues the counter.
	w2 := newDropWriter(base, "erp", FormatCSV, []string{"order", "total"}, 1<<20, 0, clk.Now)
	if name, err := w2.Append([]byte("e9,o1,100\n")); err != nil || name != "erp-0000000004-20300102T060405Z.csv" {
		t.Fatalf("after a restart: %s, %v", name, err)
	}
	w2.Close()
	if got := lines(t, filepath.Join(dir, "erp-0000000004-20300102T060405Z.csv")); !slices.Equal(got, []string{"event_id,order,total", "e9,o1,100"}) {
		t.Fatalf("CSV file %q", got)
	}
}

// TestFileDropCrashRecovery: a process that dies with a file open leaves
// only the temporary file; the next writer cuts its torn last line (never
// synced, so never counted delivered), closes it under its final name, and
// goes on in a new file. A row synced before the crash is never lost.
func TestFileDropCrashRecovery(t *testing.T) {
	base := t.TempDir()
	clk := sqldbtest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	w := newDropWriter(base, "wms", FormatJSONL, nil, 1<<20, 0, clk.Now)
	for _, id := range []string{"e1", "e2"} {
		if _, err := w.Append([]byte(`{"event_id":"` + id + `"}` + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	// The crash: half a row written after the last sync, the file never
	// closed (w is dropped as it is).
	part := w.part
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"event_id":"e3","tor`)
	f.Close()
	dir := filepath.Join(base, "wms")
	if closed, temp := readDir(t, dir); len(closed) != 0 || len(temp) != 1 {
		t.Fatalf("after the crash: closed %v, temp %v", closed, temp)
	}
	// An empty temporary file (a crash right after creating it) goes.
	os.WriteFile(filepath.Join(dir, ".wms-0000000002-20300102T030405Z.jsonl.part"), nil, 0o640)

	w2 := newDropWriter(base, "wms", FormatJSONL, nil, 1<<20, 0, clk.Now)
	name, err := w2.Append([]byte(`{"event_id":"e3"}` + "\n")) // the retry of e3
	if err != nil {
		t.Fatal(err)
	}
	w2.Close()
	closed, temp := readDir(t, dir)
	if !slices.Equal(closed, []string{"wms-0000000001-20300102T030405Z.jsonl", "wms-0000000003-20300102T030405Z.jsonl"}) || len(temp) != 0 {
		t.Fatalf("after recovery: closed %v temp %v", closed, temp)
	}
	if got := lines(t, filepath.Join(dir, closed[0])); !slices.Equal(got, []string{`{"event_id":"e1"}`, `{"event_id":"e2"}`}) {
		t.Fatalf("recovered file %q: want the two synced rows, the torn one cut", got)
	}
	if name != closed[1] || !slices.Equal(lines(t, filepath.Join(dir, closed[1])), []string{`{"event_id":"e3"}`}) {
		t.Fatalf("the retried row went to %s", name)
	}
}
