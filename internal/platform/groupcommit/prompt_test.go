package groupcommit_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"mercato/internal/platform/groupcommit"
	"mercato/internal/platform/sqldb"
	"mercato/internal/platform/sqldb/sqldbtest"
)

// batchLog records which transaction each unit committed in: a unit's
// transaction is numbered when its first unit runs (one worker: in the
// order the batches run), and a unit is logged after the commit.
type batchLog struct {
	next atomic.Int64
	mu   sync.Mutex
	in   map[int64][]string
}

type batchKey struct{}

func newBatchLog() *batchLog { return &batchLog{in: map[int64][]string{}} }

// unit returns a unit named name that writes its rows and logs its batch;
// wait, when set, is called inside the unit after it is numbered.
func (l *batchLog) unit(name string, prompt bool, wait func()) sqldb.Unit {
	return sqldb.Unit{Prompt: prompt, Run: func(tx *sqldb.Tx) error {
		v, err := tx.Local(batchKey{}, func() (any, error) { return l.next.Add(1), nil })
		if err != nil {
			return err
		}
		if wait != nil {
			wait()
		}
		id := v.(int64)
		tx.AfterCommit(func() {
			l.mu.Lock()
			l.in[id] = append(l.in[id], name)
			l.mu.Unlock()
		})
		return insertUnit(context.Background(), tx, name)
	}}
}

// batches returns the committed batches in the order they ran, each as
// its lane ("o" ordinary, "p" prompt, "?" mixed) and size, e.g. "p2".
func (l *batchLog) batches(t *testing.T) []string {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]int64, 0, len(l.in))
	for id := range l.in {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []string
	for _, id := range ids {
		lane := ""
		for _, n := range l.in[id] {
			switch {
			case lane == "":
				lane = n[:1]
			case lane != n[:1]:
				lane = "?"
			}
		}
		out = append(out, fmt.Sprintf("%s%d", lane, len(l.in[id])))
	}
	return out
}

// blockWriter runs an ordinary unit named name alone in a batch and returns
// once its worker is inside it; release lets it commit, and done is closed
// with its outcome in *err.
func blockWriter(t *testing.T, b *groupcommit.Batcher, l *batchLog, name string) (release func(), done <-chan struct{}, err *error) {
	t.Helper()
	entered, free, fin := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var once sync.Once
	err = new(error)
	go func() {
		defer close(fin)
		*err = b.Run(context.Background(), l.unit(name, false, func() { once.Do(func() { close(entered) }); <-free }))
	}()
	<-entered
	return func() { close(free) }, fin, err
}

// waitQueued waits until b holds ordinary+prompt units queued, in either
// lane (a batcher that put a unit in the wrong lane fails the test's
// assertions, not this wait).
func waitQueued(b *groupcommit.Batcher, ordinary, prompt int) {
	for {
		o, p := groupcommit.Queued(b)
		if o+p >= ordinary+prompt {
			return
		}
		runtime.Gosched()
	}
}

// submit runs each unit from a goroutine of its own; the returned wait
// gives their outcomes.
func submit(b *groupcommit.Batcher, units []sqldb.Unit) (wait func() []error) {
	res := make([]error, len(units))
	var wg sync.WaitGroup
	for i, u := range units {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = b.Run(context.Background(), u)
		}()
	}
	return func() []error { wg.Wait(); return res }
}

func wantNil(t *testing.T, errs []error) {
	t.Helper()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func TestPromptLane(t *testing.T) {
	sqldbtest.ForEachEngine(t, func(t *testing.T, db *sqldb.DB) {
		t.Run("a prompt unit commits before the ordinary units queued with it", func(t *testing.T) {
			b := groupcommit.New(db, groupcommit.Config{Workers: 1, MaxBatch: 64})
			defer b.Close()
			l := newBatchLog()
			release, blocked, blockErr := blockWriter(t, b, l, "o-ablock")
			var units []sqldb.Unit
			for i := range 8 {
				units = append(units, l.unit(fmt.Sprintf("o-a%d", i), false, nil))
			}
			units = append(units, l.unit("p-awal", true, nil))
			wait := submit(b, units)
			waitQueued(b, 8, 1) // all nine queued behind the writer's batch
			release()
			wantNil(t, wait())
			<-blocked
			wantNil(t, []error{*blockErr})
			// Without the lane the prompt unit would commit in the batch
			// of the eight ("o9" or "?9").
			if got, want := l.batches(t), []string{"o1", "p1", "o8"}; !slices.Equal(got, want) {
				t.Fatalf("batches %v, want %v: the blocking one, the prompt unit alone, then the ordinary ones", got, want)
			}
			if n := count(t, db, `SELECT count(*) FROM units WHERE name LIKE 'o-a%' OR name = 'p-awal'`); n != 10 {
				t.Fatalf("rows %d, want 10", n)
			}
		})
		t.Run("queued prompt units go at most one batch between two ordinary ones", func(t *testing.T) {
			b := groupcommit.New(db, groupcommit.Config{Workers: 1, MaxBatch: 3, MaxPrompt: 2})
			defer b.Close()
			l := newBatchLog()
			release, blocked, blockErr := blockWriter(t, b, l, "o-bblock")
			var units []sqldb.Unit
			for i := range 6 {
				units = append(units, l.unit(fmt.Sprintf("o-b%d", i), false, nil))
			}
			for i := range 8 { // the lane's whole capacity with one worker
				units = append(units, l.unit(fmt.Sprintf("p-b%d", i), true, nil))
			}
			wait := submit(b, units)
			waitQueued(b, 6, 8)
			release()
			wantNil(t, wait())
			<-blocked
			wantNil(t, []error{*blockErr})
			// Prompt batches of at most MaxPrompt, one between two ordinary
			// batches while ordinary units wait, back to back after.
			want := []string{"o1", "p2", "o3", "p2", "o3", "p2", "p2"}
			if got := l.batches(t); !slices.Equal(got, want) {
				t.Fatalf("batches %v, want %v", got, want)
			}
		})
		t.Run("a flood of prompt units does not starve an ordinary one", func(t *testing.T) {
			b := groupcommit.New(db, groupcommit.Config{Workers: 1, MaxBatch: 8, MaxPrompt: 2})
			defer b.Close()
			l := newBatchLog()
			// 8 callers keep the lane full: each queues its next prompt
			// unit as soon as the last one committed, so 6 or more wait
			// behind every prompt batch of 2.
			stop := make(chan struct{})
			var flood sync.WaitGroup
			var floodErr atomic.Value
			var seq atomic.Int64
			for range 8 {
				flood.Add(1)
				go func() {
					defer flood.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						if err := b.Run(context.Background(), l.unit(fmt.Sprintf("p-f%d", seq.Add(1)), true, nil)); err != nil {
							floodErr.Store(err)
							return
						}
					}
				}()
			}
			waitQueued(b, 0, 6)
			// One ordinary unit at a time, the batches counted: before is
			// the number of batches begun before it is queued; then at most
			// one prompt batch may begin before its own (the one the worker
			// may have taken and not numbered yet, or the one it takes
			// after the batch in progress), so its batch is at most
			// before+2. A lane that always went first would put it after
			// every prompt batch of the flood.
			for i := range 20 {
				before := l.next.Load()
				err := b.Run(context.Background(), l.unit(fmt.Sprintf("o-f%d", i), false, nil))
				if err != nil {
					t.Fatal(err)
				}
				var at int64
				l.mu.Lock()
				for id, names := range l.in {
					if slices.Contains(names, fmt.Sprintf("o-f%d", i)) {
						at = id
					}
				}
				l.mu.Unlock()
				if at == 0 || at > before+2 {
					t.Fatalf("ordinary unit %d queued after batch %d committed in batch %d: more than one prompt batch went first", i, before, at)
				}
			}
			close(stop)
			flood.Wait()
			if err, _ := floodErr.Load().(error); err != nil {
				t.Fatal(err)
			}
			for _, bt := range l.batches(t) {
				if bt[0] == 'p' && bt != "p1" && bt != "p2" {
					t.Fatalf("prompt batch %s: above MaxPrompt (2)", bt)
				}
				if bt[0] == '?' {
					t.Fatalf("batch %s mixes the lanes", bt)
				}
			}
		})
		t.Run("close finishes the units queued in both lanes", func(t *testing.T) {
			b := groupcommit.New(db, groupcommit.Config{Workers: 1, MaxBatch: 64, MaxPrompt: 16})
			l := newBatchLog()
			release, blocked, blockErr := blockWriter(t, b, l, "o-cblock")
			var units []sqldb.Unit
			for i := range 10 {
				units = append(units, l.unit(fmt.Sprintf("o-c%d", i), false, nil), l.unit(fmt.Sprintf("p-c%d", i), true, nil))
			}
			wait := submit(b, units)
			waitQueued(b, 10, 10)
			closed := make(chan struct{})
			go func() { b.Close(); close(closed) }()
			for !groupcommit.Closed(b) {
				runtime.Gosched()
			}
			if err := b.Run(context.Background(), sqldb.Unit{Prompt: true, Run: func(*sqldb.Tx) error { return nil }}); !errors.Is(err, groupcommit.ErrClosed) {
				t.Fatalf("a prompt unit after Close: %v, want ErrClosed", err)
			}
			release()
			wantNil(t, wait())
			<-blocked
			<-closed
			wantNil(t, []error{*blockErr})
			if n := count(t, db, `SELECT count(*) FROM units WHERE name LIKE '%-c%'`); n != 21 {
				t.Fatalf("rows %d, want the 20 units queued at Close and the one in progress", n)
			}
			if got, want := l.batches(t), []string{"o1", "p10", "o10"}; !slices.Equal(got, want) {
				t.Fatalf("batches %v, want %v", got, want)
			}
		})
	}, source())
}
