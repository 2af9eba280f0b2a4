package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

// errUsage marks a command-line mistake (exit status 2): errors.Is(err,
// errUsage) holds for every *usageError.
var errUsage = errors.New("usage")

// usageError is a command-line mistake. run prints it on one line, then the
// usage text of the command it belongs to (when usage is set).
type usageError struct {
	msg   string
	usage func(io.Writer) // nil: print no usage
}

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == errUsage }

// usagef returns a *usageError whose usage is fs's (none when fs is nil).
func usagef(fs *flag.FlagSet, format string, args ...any) error {
	e := &usageError{msg: fmt.Sprintf(format, args...)}
	if fs != nil {
		e.usage = func(w io.Writer) { fs.SetOutput(w); fs.Usage() }
	}
	return e
}

// textUsage returns a *usageError that prints text as its usage.
func textUsage(text, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), usage: func(w io.Writer) { fmt.Fprint(w, text) }}
}

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

const usage = `mercato — e-commerce platform with an order synchronization engine

Usage:
  mercato serve [flags]          run the shop (HTTP API, outbox relay, event consumers)
  mercato migrate [flags]        apply database migrations and exit
  mercato admin create-user ...  create a user (e.g. the first admin)
  mercato search reindex         rebuild the product search index
  mercato bench <scenario> ...   drive a running server as many buyers (load generator)
  mercato version                print the version

Every flag can also be set in the environment as MERCATO_<FLAG>
(e.g. --data-dir is MERCATO_DATA_DIR). Run "mercato <command> --help" for its flags.
`

// run is the whole program: it parses args (flags with MERCATO_* fallbacks
// from getenv), runs the sub-command and returns its error. A failure is
// reported on stderr here, once: one line "mercato: <error>", followed by the
// command's usage for a command-line mistake; main only turns it into the
// exit status. Tests call run.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, getenv, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "mercato:", err)
		var u *usageError
		if errors.As(err, &u) && u.usage != nil {
			fmt.Fprintln(stderr)
			u.usage(stderr)
		}
	}
	return err
}

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return textUsage(usage, "no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, rest, getenv, stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, rest, getenv, stdout, stderr)
	case "admin":
		return cmdAdmin(ctx, rest, getenv, stdout, stderr)
	case "debug":
		return cmdDebug(ctx, rest, getenv, stdout, stderr)
	case "search":
		return cmdSearch(ctx, rest, getenv, stdout, stderr)
	case "bench":
		return cmdBench(ctx, rest, getenv, stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "mercato %s\n", version)
		return nil
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return textUsage(usage, "unknown command %q", cmd)
}

// parse parses args into fs, then fills every flag not given on the
// command line from the environment variable MERCATO_<FLAG> (upper case,
// dashes as underscores). --help prints the flags on stdout and returns
// flag.ErrHelp; a mistake returns a *usageError (the flag package prints
// nothing itself, so run reports it once).
func parse(fs *flag.FlagSet, args []string, getenv func(string) string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return err
		}
		return usagef(fs, "%v", err)
	}
	if fs.NArg() > 0 {
		return usagef(fs, "unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		name := EnvName(f.Name)
		if v := getenv(name); v != "" {
			if e := f.Value.Set(v); e != nil {
				err = usagef(nil, "%s=%q: %v", name, v, e)
			}
		}
	})
	return err
}

// EnvName is the environment variable of a flag: MERCATO_ + upper snake case.
func EnvName(flagName string) string {
	return "MERCATO_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// newFlagSet returns a FlagSet whose usage text names the command and says
// how the environment maps to it.
func newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: mercato %s\n\n%s\n\nFlags (each also read from MERCATO_<FLAG>):\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// helpOK turns a --help request into success (exit 0).
func helpOK(err error) (bool, error) {
	if errors.Is(err, flag.ErrHelp) {
		return true, nil
	}
	return err != nil, err
}
