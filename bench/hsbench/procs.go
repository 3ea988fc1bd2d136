package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process the benchmark started (broker, router,
// deliverer), with its CPU time and peak memory read from /proc.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

var clkTck = 100.0 // USER_HZ; 100 on every Linux this runs on

func startProc(name, logDir string, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = cleanEnv()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

// cleanEnv drops HOOKSTREAM_* so a stray variable cannot change a child.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOOKSTREAM_") {
			env = append(env, kv)
		}
	}
	return env
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM and waits (SIGKILL after the timeout).
func (p *proc) stop(timeout time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// tail returns the last lines of the process log, for error messages.
func (p *proc) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cpuSeconds is the user+system CPU time of pid (threads included).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the ")" that closes the command name; utime and stime
	// are fields 14 and 15 of the whole line.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(fields[11], 64)
	st, _ := strconv.ParseFloat(fields[12], 64)
	return (ut + st) / clkTck
}

// peakRSSMB is the peak resident set (VmHWM) of pid in MiB.
func peakRSSMB(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// selfCPU is this process's CPU time.
func selfCPU() float64 { return cpuSeconds(os.Getpid()) }

// broker is the Kafka the run uses: real Kafka from scripts/kafka.sh, or the
// embedded one as its own process.
type broker struct {
	kind  string
	addrs []string
	proc  *proc  // kfake
	pids  []int  // real Kafka JVMs
	dir   string // real Kafka data dir
	stop  func()
}

// startBroker starts a broker of kind; jit is the real Kafka broker's JIT
// (scripts/kafka.sh's HOOKSTREAM_KAFKA_JIT: full or quick).
func startBroker(ctx context.Context, kind, bin, repo, dir, jit string) (*broker, error) {
	switch kind {
	case "kfake":
		p, err := startProc("kfake", dir, bin, "kfake", "--kafka-addr", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			b, _ := os.ReadFile(p.log)
			if line := strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]); strings.Contains(line, ":") {
				return &broker{kind: kind, addrs: []string{line}, proc: p, pids: []int{p.pid()}, stop: func() { p.stop(10 * time.Second) }}, nil
			}
			time.Sleep(50 * time.Millisecond)
		}
		p.stop(time.Second)
		return nil, fmt.Errorf("kfake did not start: %s", p.tail(20))
	case "kafka":
		script := filepath.Join(repo, "scripts", "kafka.sh")
		kdir := filepath.Join(dir, "kafka")
		cmd := exec.CommandContext(ctx, script, "start", "--dir", kdir, "--owner-pid", strconv.Itoa(os.Getpid()))
		cmd.Stderr = os.Stderr
		cmd.Env = append(os.Environ(), "HOOKSTREAM_KAFKA_JIT="+jit)
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("scripts/kafka.sh start: %w", err)
		}
		b := &broker{kind: kind, addrs: strings.Split(strings.TrimSpace(string(out)), ","), dir: kdir}
		if pid, err := os.ReadFile(filepath.Join(kdir, "node-1", "pid")); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil {
				b.pids = []int{n}
			}
		}
		b.stop = func() {
			c := exec.Command(script, "stop", "--dir", kdir)
			c.Stdout, c.Stderr = os.Stderr, os.Stderr
			_ = c.Run()
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown broker kind %q (kfake or kafka)", kind)
}

func (b *broker) cpu() float64 {
	var s float64
	for _, pid := range b.pids {
		s += cpuSeconds(pid)
	}
	return s
}

func (b *broker) rssMB() float64 {
	var s float64
	for _, pid := range b.pids {
		s += peakRSSMB(pid)
	}
	return s
}
