package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockFileName is the file in the data directory that `mercato serve` holds
// an exclusive OS lock on for as long as it runs.
const lockFileName = "serve.lock"

// errDataDirInUse is returned by lockDataDir when another process holds the
// data directory's lock.
var errDataDirInUse = errors.New("data directory in use")

// dataDirUse says what of the process's state lives under --data-dir: the
// SQLite database unless --database-url is set, the embedded NATS JetStream
// store unless --nats-url is set. Empty when both are external.
func (c serveConfig) dataDirUse() []string {
	var use []string
	if c.databaseURL == "" {
		use = append(use, "database")
	}
	if c.natsURL == "" {
		use = append(use, "bus")
	}
	if c.search == searchBleve && runs(parseModules(c.modules), "catalog") {
		use = append(use, "search index")
	}
	return use
}

// dirLock is an exclusive OS lock on a data directory, held until Release.
type dirLock struct {
	f *os.File
}

// lockDataDir creates dir when missing and takes an exclusive, non-blocking
// OS lock (flock) on dir/serve.lock, then writes this process's id into the
// file for the message a second server prints. The kernel drops the lock
// when the process ends however it ends, so a crash leaves no stale lock.
//
// It returns an error wrapping errDataDirInUse, naming the holder's process
// id when known, when another process (or another lockDataDir call in this
// process) holds the lock. It touches nothing in dir but the lock file.
func lockDataDir(dir string) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("data directory: lock %s: %w", path, err)
	}
	if !held {
		holder := ""
		if b, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				holder = fmt.Sprintf(" (process %d)", pid)
			}
		}
		f.Close()
		return nil, fmt.Errorf("%w: %s is held by another running mercato serve%s; stop it first, or give this one its own --data-dir",
			errDataDirInUse, dir, holder)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// Release drops the lock. It is safe on a nil *dirLock and idempotent.
func (l *dirLock) Release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Close() // closing the descriptor releases the flock
	l.f = nil
}

// absDir is dir made absolute for the log; dir itself when that fails.
func absDir(dir string) string {
	if a, err := filepath.Abs(dir); err == nil {
		return a
	}
	return dir
}
