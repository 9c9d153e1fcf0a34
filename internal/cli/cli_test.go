package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/duration"
)

func TestExecuteMapsErrorsToExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		code   int
		stderr string
	}{
		{"success", nil, 0, ""},
		{"plain error", errors.New("boom"), 1, "prog: boom\n"},
		{"usage error", &ExitError{Code: 2, Err: errors.New("--x is required")}, 2, "prog: --x is required\n"},
		{"wrapped usage error", fmt.Errorf("loading: %w", &ExitError{Code: 2, Err: errors.New("bad")}), 2, "prog: loading: bad\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			root := &cobra.Command{Use: "prog", RunE: func(*cobra.Command, []string) error { return tc.err }}
			root.SetOut(&stdout)
			root.SetErr(&stderr)
			if code := Execute(context.Background(), root, nil); code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			if stderr.String() != tc.stderr || stdout.Len() != 0 {
				t.Errorf("stderr %q (want %q), stdout %q: no usage text on errors", stderr.String(), tc.stderr, stdout.String())
			}
		})
	}
}

func TestExecuteReportsFlagErrorsAsUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"--nope"}, "prog: unknown flag: --nope\nRun 'prog --help' for usage.\n"},
		{[]string{"sub", "--n", "x"}, `prog: invalid argument "x" for "--n" flag: strconv.ParseInt: parsing "x": invalid syntax` + "\nRun 'prog sub --help' for usage.\n"},
		{[]string{"sub", "extra"}, "prog: unknown command \"extra\" for \"prog sub\"\nRun 'prog sub --help' for usage.\n"},
		{[]string{"req"}, "prog: missing required flag(s): --a, --b\nRun 'prog req --help' for usage.\n"},
	} {
		var stdout, stderr bytes.Buffer
		root := &cobra.Command{Use: "prog", RunE: func(*cobra.Command, []string) error { return nil }}
		sub := &cobra.Command{Use: "sub", RunE: func(*cobra.Command, []string) error { return nil }}
		sub.Flags().Int("n", 0, "")
		req := &cobra.Command{Use: "req", RunE: func(*cobra.Command, []string) error { return nil }}
		req.Flags().String("a", "", "")
		req.Flags().String("b", "", "")
		_ = req.MarkFlagRequired("a")
		_ = req.MarkFlagRequired("b")
		sub.Args = cobra.NoArgs
		root.AddCommand(sub, req)
		root.SetOut(&stdout)
		root.SetErr(&stderr)
		if code := Execute(context.Background(), root, tc.args); code != 2 {
			t.Errorf("%q: exit code %d, want 2", tc.args, code)
		}
		if stderr.String() != tc.stderr || stdout.Len() != 0 {
			t.Errorf("%q: stderr %q (want %q), stdout %q", tc.args, stderr.String(), tc.stderr, stdout.String())
		}
	}
}

func TestExecuteReportedErrorIsNotPrintedAgain(t *testing.T) {
	var stderr bytes.Buffer
	root := &cobra.Command{Use: "prog", RunE: func(*cobra.Command, []string) error {
		return &ExitError{Code: 1, Err: errors.New("logged already"), Reported: true}
	}}
	root.SetErr(&stderr)
	if code := Execute(context.Background(), root, nil); code != 1 || stderr.Len() != 0 {
		t.Fatalf("code %d, stderr %q: want 1 and nothing printed", code, stderr.String())
	}
}

func TestVersionFlagAndCommandPrintOneFormat(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		var stdout bytes.Buffer
		root := &cobra.Command{Use: "prog", RunE: func(*cobra.Command, []string) error { return errors.New("ran") }}
		AddVersion(root, "prog")
		root.SetOut(&stdout)
		if code := Execute(context.Background(), root, args); code != 0 {
			t.Fatalf("%q: exit %d", args, code)
		}
		if got, want := stdout.String(), VersionString("prog")+"\n"; got != want || !strings.Contains(got, "(commit ") || !strings.Contains(got, ", built with go") {
			t.Errorf("%q printed %q, want %q", args, got, want)
		}
	}
}

func TestMissingFlagsListsAllAtOnce(t *testing.T) {
	err := MissingFlags([]string{"a", "b", "c"}, []string{"", "x", ""})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 2 || err.Error() != "missing required flag(s): --a, --c" {
		t.Fatalf("got %v", err)
	}
	if MissingFlags([]string{"a"}, []string{"x"}) != nil {
		t.Fatal("nothing missing must be nil")
	}
}

// TestBareInvocationIsAUsageError: a root that only groups commands, run without one, prints why and its
// usage on stderr and exits 2; --help still prints the help on stdout and exits 0.
func TestBareInvocationIsAUsageError(t *testing.T) {
	newRoot := func() (*cobra.Command, *bytes.Buffer, *bytes.Buffer) {
		var stdout, stderr bytes.Buffer
		root := &cobra.Command{Use: "prog", Short: "the program"}
		root.AddCommand(&cobra.Command{Use: "sub", Short: "a subcommand", RunE: func(*cobra.Command, []string) error { return nil }})
		AddVersion(root, "prog")
		root.SetOut(&stdout)
		root.SetErr(&stderr)
		return root, &stdout, &stderr
	}
	root, stdout, stderr := newRoot()
	if code := Execute(context.Background(), root, nil); code != 2 {
		t.Errorf("bare: exit %d, want 2", code)
	}
	if stdout.Len() != 0 || !strings.HasPrefix(stderr.String(), "prog: a command is required: pick one of those listed below\n\nUsage:") ||
		!strings.Contains(stderr.String(), "Available Commands:") {
		t.Errorf("bare: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	root, stdout, stderr = newRoot()
	if code := Execute(context.Background(), root, []string{"--help"}); code != 0 || stderr.Len() != 0 ||
		!strings.Contains(stdout.String(), "Available Commands:") {
		t.Errorf("--help: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

// TestDurationFlagErrorsNameTheFlagAndTheForms: a bad duration flag's message is "--flag VALUE …" with
// the accepted forms and range, not pflag's generic wording.
func TestDurationFlagErrorsNameTheFlagAndTheForms(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{"5m", "prog: --session-duration 5m is too short: the minimum is 15m; give 15m to 12h (900 to 43200 seconds, PT15M to PT12H), e.g. 1h\n"},
		{"soon", `prog: --session-duration "soon" is not a duration: write a Go duration (90m, 1h), seconds (3600) or ISO 8601 (PT1H); give 15m to 12h (900 to 43200 seconds, PT15M to PT12H), e.g. 1h` + "\n"},
	} {
		var stdout, stderr bytes.Buffer
		root := &cobra.Command{Use: "prog", RunE: func(*cobra.Command, []string) error { return nil }}
		root.Flags().Var(duration.NewValue("1h", duration.Range{Min: 15 * time.Minute, Max: 12 * time.Hour, Example: "1h"}), "session-duration", "")
		root.SetOut(&stdout)
		root.SetErr(&stderr)
		if code := Execute(context.Background(), root, []string{"--session-duration", tc.arg}); code != 2 || stderr.String() != tc.want {
			t.Errorf("%s: exit %d, stderr %q, want %q", tc.arg, code, stderr.String(), tc.want)
		}
	}
}
