package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"mercato/internal/platform/sqldb"
)

// envAsBinary makes the test binary run main instead of the tests, so the
// whole-binary tests exec this very binary (already built, with -race when
// the run has it) rather than compiling cmd/mercato a second time.
const envAsBinary = "MERCATO_TEST_RUN_AS_BINARY"

func TestMain(m *testing.M) {
	if os.Getenv(envAsBinary) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// binary returns the path of an executable that behaves as `mercato` when
// run with binaryEnv.
func binary(t *testing.T) string {
	t.Helper()
	path, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// binaryEnv is the environment of a process started from binary(t).
func binaryEnv(extra ...string) []string {
	return append(append(os.Environ(), envAsBinary+"=1"), extra...)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// server is a mercato process under test.
type server struct {
	cmd  *exec.Cmd
	addr string
	logs *lockedBuilder
	done chan error
}

// lockedBuilder collects a process's standard error; safe for concurrent use.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// startServer runs `mercato serve` with args and waits until it listens.
func startServer(t *testing.T, bin string, args ...string) *server {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr}, args...)...)
	cmd.Env = binaryEnv("MERCATO_LOG_LEVEL=warn")
	stdout, _ := cmd.StdoutPipe()
	logs := &lockedBuilder{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, addr: addr, logs: logs, done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening on") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	go func() { s.done <- cmd.Wait() }()
	select {
	case <-ready:
	case err := <-s.done:
		t.Fatalf("server exited before listening: %v\n%s", err, logs.String())
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("server did not start\n%s", logs.String())
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return s
}

// stop sends sig and returns the exit error.
func (s *server) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	s.cmd.Process.Signal(sig)
	select {
	case err := <-s.done:
		return err
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		t.Fatalf("server did not stop on %v", sig)
		return nil
	}
}

// TestBinaryCrashLosesNoEvent runs the binary, feeds its relay from a second
// process, SIGKILLs the server mid-stream and corrupts the JetStream stream's
// metadata file (as a power cut can), restarts it and checks that the
// embedded server's complaint reaches the log and that every committed event
// reaches JetStream, each aggregate's in order. The work is counted (total
// events, killed after a third of them were committed), never timed; the
// timeouts only end a hung run.
func TestBinaryCrashLosesNoEvent(t *testing.T) {
	bin := binary(t)
	dataDir := t.TempDir()
	natsAddr := freeAddr(t)
	serveArgs := []string{"--data-dir", dataDir, "--nats-listen", natsAddr, "--relay-poll", "20ms"}
	srv := startServer(t, bin, serveArgs...)

	const total = 600
	emit := exec.Command(bin, "debug", "emit-events", "--data-dir", dataDir,
		"--count", fmt.Sprint(total), "--aggregates", "25", "--batch", "10")
	emit.Env = binaryEnv()
	emitOut, _ := emit.StdoutPipe()
	if err := emit.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill the server once a part of the stream is written and being relayed.
	sc := bufio.NewScanner(emitOut)
	killed := false
	for sc.Scan() {
		var n int
		fmt.Sscanf(sc.Text(), "emitted %d", &n)
		if !killed && n >= total/3 {
			srv.cmd.Process.Signal(syscall.SIGKILL)
			<-srv.done
			killed = true
		}
	}
	if err := emit.Wait(); err != nil {
		t.Fatalf("emitter: %v", err)
	}
	if !killed {
		t.Fatal("server was never killed")
	}
	meta := filepath.Join(dataDir, "nats", "jetstream", "$G", "streams", "MERCATO", "meta.inf")
	f, err := os.OpenFile(meta, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatalf("stream metadata: %v", err)
	}
	if _, err := f.WriteString(" "); err != nil { // the checksum no longer matches
		t.Fatal(err)
	}
	f.Close()

	srv = startServer(t, bin, serveArgs...)
	db, err := sqldb.Open(context.Background(), sqldb.Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	waitFor(t, 2*time.Minute, "outbox drained", func() bool {
		var n int
		db.Reader().QueryRow(`SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&n)
		return n == 0
	})
	committed := map[string]bool{}
	rows, err := db.Reader().Query(`SELECT event_id FROM outbox WHERE aggregate_type = 'debug'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		rows.Scan(&id)
		committed[id] = true
	}
	rows.Close()
	if len(committed) != total {
		t.Fatalf("outbox holds %d events, want %d", len(committed), total)
	}

	seen := readStream(t, "nats://"+natsAddr)
	missing := 0
	for id := range committed {
		if !seen[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d committed events never reached the bus", missing, total)
	}
	if !logged(srv.logs.String(), "WARN", "nats", "checksums do not match") {
		t.Errorf("the corrupted stream metadata was not logged as a warning:\n%s", srv.logs.String())
	}
	if err := srv.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("clean stop: %v\n%s", err, srv.logs.String())
	}
}

// readStream reads every message of the MERCATO stream and checks that the
// first delivery of each aggregate's events comes in sequence order.
func readStream(t *testing.T, url string) map[string]bool {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, "MERCATO")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"mercato.debug.>"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	last := map[string]int64{}
	for read := uint64(0); read < info.State.Msgs; {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var e struct {
				ID          string `json:"id"`
				AggregateID string `json:"aggregate_id"`
				Sequence    int64  `json:"sequence"`
			}
			if err := json.Unmarshal(m.Data(), &e); err != nil {
				t.Fatal(err)
			}
			if !seen[e.ID] {
				if e.Sequence != last[e.AggregateID]+1 {
					t.Fatalf("aggregate %s: sequence %d after %d", e.AggregateID, e.Sequence, last[e.AggregateID])
				}
				last[e.AggregateID] = e.Sequence
			}
			seen[e.ID] = true
		}
		if got == 0 {
			break
		}
		read += uint64(got)
	}
	return seen
}

// logged reports whether logs (JSON lines) hold a record at level from
// component whose message contains text.
func logged(logs, level, component, text string) bool {
	for line := range strings.Lines(logs) {
		var r struct{ Level, Msg, Component string }
		if json.Unmarshal([]byte(line), &r) == nil && r.Level == level && r.Component == component &&
			strings.Contains(r.Msg, text) {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
