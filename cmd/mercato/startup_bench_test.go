package main

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkServeStartup measures `mercato serve` on an empty data dir, in
// a process of its own (this test binary run as mercato): the time from
// exec to the first 200 from /readyz, and the resident memory after a
// second idle. Its same-run reference is the time to exec `mercato
// version` (the floor of starting the process at all). Medians of b.N.
func BenchmarkServeStartup(b *testing.B) {
	var ready, ref, rss []float64
	for range b.N {
		t0 := time.Now()
		v := exec.Command(os.Args[0], "version")
		v.Env = binaryEnv()
		if err := v.Run(); err != nil {
			b.Fatal(err)
		}
		ref = append(ref, ms(time.Since(t0)))
		dir := b.TempDir()
		cmd := exec.Command(os.Args[0], "serve", "--data-dir", dir, "--addr", "127.0.0.1:0", "--log-level", "error")
		cmd.Env = binaryEnv()
		out, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		t0 = time.Now()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		base := ""
		for sc := bufio.NewScanner(out); base == "" && sc.Scan(); {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				base = m[1]
			}
		}
		if base == "" {
			b.Fatal("serve printed no listening line")
		}
		for {
			res, err := http.Get(base + "/readyz")
			if err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					break
				}
			}
			time.Sleep(time.Millisecond)
		}
		ready = append(ready, ms(time.Since(t0)))
		time.Sleep(time.Second)
		rss = append(rss, residentMiB(b, cmd.Process.Pid))
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			b.Fatalf("serve did not stop cleanly: %v", err)
		}
	}
	b.ReportMetric(median(ready), "ready_ms")
	b.ReportMetric(median(ref), "ref_exec_version_ms")
	b.ReportMetric(median(rss), "idle_rss_MiB")
	b.ReportMetric(0, "ns/op")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// residentMiB reads a process's resident set (VmRSS) in MiB.
func residentMiB(b *testing.B, pid int) float64 {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
