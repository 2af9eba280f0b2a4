package webhooks

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A file_drop connector appends one row per event — a JSON line or a CSV
// row — to a file in its own directory, <Config.ConnectorDir>/<file>/,
// for batch-style systems that pick files up. Files rotate by size and by
// age; a file is written under a hidden temporary name (.<final>.part) and
// appears under its final name only once it is closed (fsync, rename,
// fsync of the directory), so a reader that ignores dot files never sees a
// file still growing. Final names sort in the order the files were
// written: <file>-<10-digit counter>-<UTC start time>.jsonl|.csv.
//
// A delivery is a durable append: the row is written and the file synced
// before the delivery counts as delivered. A delivery may still be written
// twice (a crash after the sync and before the delivery is settled, or a
// replay): every row carries the event id (the first CSV column, the first
// member of a JSON line), on which the reader de-duplicates — at-least-once,
// like webhooks.
//
// After a crash the temporary file of the file being written is found when
// the connector next writes: its torn last line, if any (a
// row not synced, so not counted delivered), is cut off and the file is
// closed under its final name.

// Formats of a file_drop connector.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// fileNameRE is what a file_drop connector's file (its directory and the
// stem of its files) may be: no dot, no slash, so nothing escapes the
// operator's directory.
var fileNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// dropWriter appends rows to one file_drop connector's current file. Safe
// for concurrent use (appends are serialised).
type dropWriter struct {
	dir, name string
	now       func() time.Time

	mu       sync.Mutex // guards the fields below
	format   string
	header   []byte // a CSV file's first line; nil for JSON lines
	maxBytes int64
	maxAge   time.Duration // 0: by size only
	f        *os.File      // the open temporary file; nil between files
	part     string        // its path
	final    string        // the path it gets when closed
	size     int64
	opened   time.Time
	seq      int64 // the last file's counter
	started  bool  // recovered the directory
}

func newDropWriter(base, name, format string, columns []string, maxBytes int64, maxAge time.Duration, now func() time.Time) *dropWriter {
	w := &dropWriter{dir: filepath.Join(base, name), name: name, now: now}
	w.configure(format, columns, maxBytes, maxAge)
	return w
}

// configure sets the format and rotation (under mu, or before use).
func (w *dropWriter) configure(format string, columns []string, maxBytes int64, maxAge time.Duration) {
	w.format, w.maxBytes, w.maxAge, w.header = format, maxBytes, maxAge, nil
	if format == FormatCSV {
		var b bytes.Buffer
		cw := csv.NewWriter(&b)
		cw.Write(append([]string{"event_id"}, columns...))
		cw.Flush()
		w.header = b.Bytes()
	}
}

// reconfigure closes the current file and applies new settings to the
// files after it.
func (w *dropWriter) reconfigure(format string, columns []string, maxBytes int64, maxAge time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		if err := w.closeFile(); err != nil {
			return err
		}
	}
	w.configure(format, columns, maxBytes, maxAge)
	return nil
}

func (w *dropWriter) ext() string {
	if w.format == FormatCSV {
		return ".csv"
	}
	return ".jsonl"
}

// start creates the directory and recovers it: every temporary file left by
// a crash is cut to its last whole line and closed under its final name.
// Called under mu.
func (w *dropWriter) start() error {
	if w.started {
		return nil
	}
	if err := os.MkdirAll(w.dir, 0o750); err != nil {
		return err
	}
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return err
	}
	recovered := false
	for _, e := range ents {
		n := e.Name()
		final, isPart := strings.CutSuffix(strings.TrimPrefix(n, "."), ".part")
		if seq := w.seqOf(final); seq > w.seq {
			w.seq = seq
		}
		if !isPart || !strings.HasPrefix(n, ".") {
			continue
		}
		if err := recoverPart(filepath.Join(w.dir, n), filepath.Join(w.dir, final)); err != nil {
			return fmt.Errorf("recover %s: %w", n, err)
		}
		recovered = true
	}
	if recovered {
		if err := syncDir(w.dir); err != nil {
			return err
		}
	}
	w.started = true
	return nil
}

// seqOf is the counter in a final file name of this connector, 0 if none.
func (w *dropWriter) seqOf(final string) int64 {
	rest, ok := strings.CutPrefix(final, w.name+"-")
	if !ok || len(rest) < 10 {
		return 0
	}
	n, err := strconv.ParseInt(rest[:10], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// recoverPart cuts the file at part to its last newline, syncs it and
// renames it to final.
func recoverPart(part, final string) error {
	f, err := os.OpenFile(part, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	keep := int64(bytes.LastIndexByte(data, '\n') + 1)
	if keep == 0 {
		// Nothing whole was written (a crash before the first row synced).
		f.Close()
		return os.Remove(part)
	}
	if keep < int64(len(data)) {
		if err := f.Truncate(keep); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return os.Rename(part, final)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Append writes one row (a whole line, newline included) and syncs it; it
// returns the final name of the file the row is in. A row that cannot be
// written whole is cut off again, so the file holds whole rows only.
func (w *dropWriter) Append(row []byte) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.start(); err != nil {
		return "", err
	}
	now := w.now()
	if w.f != nil && (w.size+int64(len(row)) > w.maxBytes && w.size > int64(len(w.header)) || w.due(now)) {
		if err := w.closeFile(); err != nil {
			return "", err
		}
	}
	if w.f == nil {
		if err := w.openFile(now); err != nil {
			return "", err
		}
	}
	if _, err := w.f.Write(row); err != nil {
		w.f.Truncate(w.size) // best effort: recovery cuts a torn line anyway
		return "", err
	}
	if err := w.f.Sync(); err != nil {
		return "", err
	}
	w.size += int64(len(row))
	return filepath.Base(w.final), nil
}

func (w *dropWriter) due(now time.Time) bool {
	return w.maxAge > 0 && !now.Before(w.opened.Add(w.maxAge))
}

// openFile starts the next file (under mu).
func (w *dropWriter) openFile(now time.Time) error {
	seq := w.seq + 1
	final := fmt.Sprintf("%s-%010d-%s%s", w.name, seq, now.UTC().Format("20060102T150405Z"), w.ext())
	part := filepath.Join(w.dir, "."+final+".part")
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	if len(w.header) > 0 {
		if _, err := f.Write(w.header); err != nil {
			f.Close()
			os.Remove(part)
			return err
		}
	}
	// The new name must survive a crash too, or synced rows would go with it.
	if err := syncDir(w.dir); err != nil {
		f.Close()
		os.Remove(part)
		return err
	}
	w.f, w.part, w.final, w.size, w.opened, w.seq = f, part, filepath.Join(w.dir, final), int64(len(w.header)), now, seq
	return nil
}

// closeFile syncs and closes the current file and gives it its final name
// (under mu).
func (w *dropWriter) closeFile() error {
	f := w.f
	w.f = nil
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(w.part, w.final); err != nil {
		return err
	}
	return syncDir(w.dir)
}

// Rotate closes the current file if it is due by age; it reports whether
// it closed one.
func (w *dropWriter) Rotate() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil || !w.due(w.now()) {
		return false, nil
	}
	return true, w.closeFile()
}

// Close closes the current file, if any, under its final name.
func (w *dropWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	return w.closeFile()
}

// Files lists the closed files of the directory, in order.
func (w *dropWriter) Files() ([]string, error) {
	ents, err := os.ReadDir(w.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// dropRow encodes one event's row: a JSON line with event_id first, or a
// CSV row with event_id in the first column.
func dropRow(format, eventID string, m *mapping, env map[string]any) ([]byte, error) {
	if format == FormatCSV {
		cells, err := m.Row(env)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		cw := csv.NewWriter(&b)
		cw.Write(append([]string{eventID}, cells...))
		cw.Flush()
		return b.Bytes(), cw.Error()
	}
	body, err := m.JSON(env)
	if err != nil {
		return nil, err
	}
	id, _ := json.Marshal(eventID)
	var b bytes.Buffer
	b.WriteString(`{"event_id":`)
	b.Write(id)
	if len(body) > 2 {
		b.WriteByte(',')
		b.Write(body[1:])
	} else {
		b.WriteByte('}')
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}
