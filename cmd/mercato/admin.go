package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"mercato/internal/platform/errs"
	"mercato/internal/platform/module"
)

func cmdAdmin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	const groupUsage = `Usage: mercato admin <command> [flags]

Commands:
  create-user   create a user with roles (e.g. the first admin)
  reset-mfa     turn a user's two-factor sign-in off (lost authenticator and recovery codes)
`
	if len(args) == 0 {
		return textUsage(groupUsage, "admin needs a command")
	}
	switch args[0] {
	case "create-user":
		return cmdCreateUser(ctx, args[1:], getenv, stdout)
	case "reset-mfa":
		return cmdResetMFA(ctx, args[1:], getenv, stdout)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, groupUsage)
		return nil
	}
	return textUsage(groupUsage, "unknown admin command %q", args[0])
}

func cmdCreateUser(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("admin create-user --email E --password P --role R [flags]",
		"Create a user. Roles: customer, admin, operator, customer_service (comma-separated).\nWorks while a server runs on the same data.")
	var st storeFlags
	st.register(fs)
	var email, password, name, roles string
	fs.StringVar(&email, "email", "", "e-mail address (required)")
	fs.StringVar(&password, "password", "", "password, at least 10 characters (required)")
	fs.StringVar(&name, "name", "", "display name (default: the part of the e-mail before @)")
	fs.StringVar(&roles, "role", "customer", "role(s), comma-separated")
	if done, err := helpOK(parse(fs, args, getenv, stdout)); done {
		return err
	}
	if email == "" || password == "" {
		return usagef(fs, "--email and --password are required")
	}
	if name == "" {
		name, _, _ = strings.Cut(email, "@")
	}
	sh, done, err := openShop(ctx, st)
	if err != nil {
		return err
	}
	defer done()
	u, err := sh.accounts.CreateUser(ctx, email, password, name, strings.Split(roles, ","))
	if err != nil {
		return describe(err)
	}
	fmt.Fprintf(stdout, "created user %s <%s> with roles %s\n", u.ID, u.Email, strings.Join(u.Roles, ","))
	return nil
}

func cmdResetMFA(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("admin reset-mfa --email E [flags]",
		"Turn off a user's two-factor sign-in and end their sessions, audited as by \"system\";\nthe user then signs in with the password and may enrol again. Works while a server runs on the same data.")
	var st storeFlags
	st.register(fs)
	var email string
	fs.StringVar(&email, "email", "", "the user's e-mail address (required)")
	if done, err := helpOK(parse(fs, args, getenv, stdout)); done {
		return err
	}
	if email == "" {
		return usagef(fs, "--email is required")
	}
	sh, done, err := openShop(ctx, st)
	if err != nil {
		return err
	}
	defer done()
	u, err := sh.accounts.ResetMFAByEmail(ctx, email)
	if err != nil {
		return describe(err)
	}
	fmt.Fprintf(stdout, "reset two-factor sign-in of user %s <%s>; their sessions are revoked\n", u.ID, u.Email)
	return nil
}

// describe turns a validation error into a message naming every field.
func describe(err error) error {
	var e *errs.Error
	if !errors.As(err, &e) || len(e.Fields) == 0 {
		return err
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return fmt.Errorf("%s (%s)", e.Msg, strings.Join(parts, "; "))
}

// openShop opens (and migrates) the database of st and builds the shop
// over it, one transaction per unit, for a command-line use case; done
// closes both.
func openShop(ctx context.Context, st storeFlags) (_ *shop, done func(), _ error) {
	db, err := st.open(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	sh, err := newShop(module.Platform{DB: db, Write: db, Logger: slog.Default()}, nil, shopConfig{})
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return sh, func() { sh.accounts.Close(); db.Close() }, nil
}
