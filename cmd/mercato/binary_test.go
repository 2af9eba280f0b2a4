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

// buildBinary builds cmd/mercato once per test run.
var buildOnce struct {
	sync.Once
	path string
	err  error
}

func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mercato-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "mercato")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
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
	logs *strings.Builder
	done chan error
}

// startServer runs `mercato serve` with args and waits until it listens.
func startServer(t *testing.T, bin string, args ...string) *server {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr}, args...)...)
	cmd.Env = append(os.Environ(), "MERCATO_LOG_LEVEL=warn")
	stdout, _ := cmd.StdoutPipe()
	logs := &strings.Builder{}
	var mu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return logs.Write(p) })
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
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("server did not start\n%s", logs.String())
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return s
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

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

// TestBinaryCrashLosesNoEvent builds the binary, feeds its relay from a
// second process, SIGKILLs the server mid-stream, restarts it and checks
// that every committed event reaches JetStream, each aggregate's in order.
func TestBinaryCrashLosesNoEvent(t *testing.T) {
	bin := binary(t)
	dataDir := t.TempDir()
	natsAddr := freeAddr(t)
	serveArgs := []string{"--data-dir", dataDir, "--nats-listen", natsAddr, "--relay-poll", "20ms"}
	srv := startServer(t, bin, serveArgs...)

	const total = 3000
	emit := exec.Command(bin, "debug", "emit-events", "--data-dir", dataDir,
		"--count", fmt.Sprint(total), "--aggregates", "25", "--batch", "10")
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

	srv = startServer(t, bin, serveArgs...)
	db, err := sqldb.Open(context.Background(), sqldb.Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	waitFor(t, 30*time.Second, "outbox drained", func() bool {
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
