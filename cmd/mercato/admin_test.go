package main

import (
	"context"
	"strings"
	"testing"
)

func TestAdminResetMFA(t *testing.T) {
	ctx := context.Background()
	env := map[string]string{"MERCATO_DATA_DIR": t.TempDir()}
	getenv := func(k string) string { return env[k] }
	var out syncBuffer
	if err := run(ctx, []string{"admin", "create-user", "--email", "lost@example.com", "--password", "Zebra-Quartz-Lamp-91"}, getenv, &out, &out); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantErr  bool
		wantCode int
		wantOut  string
	}{
		{"help", []string{"admin", "reset-mfa", "--help"}, false, 0, "-email"},
		{"without email", []string{"admin", "reset-mfa"}, true, 2, ""},
		{"unknown user", []string{"admin", "reset-mfa", "--email", "nobody@example.com"}, true, 1, ""},
		{"malformed address", []string{"admin", "reset-mfa", "--email", "no\x00body@example.com"}, true, 1, ""},
		{"a user", []string{"admin", "reset-mfa", "--email", "LOST@example.com"}, false, 0, "reset two-factor sign-in of user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			err := run(ctx, tc.args, getenv, &out, &out)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr && exitCode(err) != tc.wantCode {
				t.Errorf("exit code %d, want %d", exitCode(err), tc.wantCode)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output %q does not contain %q", out.String(), tc.wantOut)
			}
		})
	}
}
