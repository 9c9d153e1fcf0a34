package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/spf13/cobra"
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
		{[]string{"--nope"}, "prog: unknown flag: --nope\n"},
		{[]string{"sub", "--n", "x"}, `prog: invalid argument "x" for "--n" flag: strconv.ParseInt: parsing "x": invalid syntax` + "\n"},
	} {
		var stdout, stderr bytes.Buffer
		root := &cobra.Command{Use: "prog", RunE: func(*cobra.Command, []string) error { return nil }}
		sub := &cobra.Command{Use: "sub", RunE: func(*cobra.Command, []string) error { return nil }}
		sub.Flags().Int("n", 0, "")
		root.AddCommand(sub)
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
