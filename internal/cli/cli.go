// Package cli is the process plumbing the bridge's binaries share: running a cobra command tree, turning
// its error into a message on stderr and an exit code, and the --version flag and version command.
//
// The contract, the same for spiffe-aws-bridge, spiffe-aws-credential-process and rolesanywhere-emulator:
// exit 0 on success, 1 on a runtime failure, 2 on a usage or configuration error (every flag, argument
// and config value error, whichever layer finds it).
package cli

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/buildinfo"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/duration"
)

// Exit codes.
const (
	// ExitFailure is a runtime failure: the input was fine, the world was not.
	ExitFailure = 1
	// ExitUsage is a usage or configuration error: fix the command line or the config file.
	ExitUsage = 2
)

// ExitError carries a specific process exit code out of a command: 2 for usage and configuration
// errors, 1 (any other error) for failures. Reported means the error was already logged (in the
// configured log format) and Execute prints nothing more.
type ExitError struct {
	Code     int
	Err      error
	Reported bool
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Usage marks err as a usage or configuration error (exit status 2); nil stays nil.
func Usage(err error) error {
	if err == nil {
		return nil
	}
	return &ExitError{Code: ExitUsage, Err: err}
}

// Usagef is Usage(fmt.Errorf(format, a...)).
func Usagef(format string, a ...any) error { return Usage(fmt.Errorf(format, a...)) }

// cobraUsage matches the errors cobra itself returns for a bad command line (unknown command, wrong
// number of arguments, missing required flags, flag groups), which it does not type.
var cobraUsage = regexp.MustCompile(`^(unknown command |unknown flag|unknown shorthand flag|accepts |requires at least |requires at most |requires exactly |received |invalid argument |flag needs an argument|required flag\(s\) |if any flags in the group |at least one of the flags in the group |none of the others can be)`)

// requiredFlags matches cobra's `required flag(s) "a", "b" not set`.
var requiredFlags = regexp.MustCompile(`^required flag\(s\) (.*) not set$`)

// Execute runs root with args and returns the process exit code: 0, the code of an ExitError, 2 for a
// command-line error (unknown command or flag, bad value, missing required flags), 1 for any other error.
// A failure is printed on root's stderr (set it with SetErr) behind root's name, without the usage
// text; a command-line error is followed by where to find the usage, and a usage error of a bare
// invocation (no arguments at all) by the usage itself. Every binary ends in it, so that
// they fail alike.
func Execute(ctx context.Context, root *cobra.Command, args []string) int {
	Prepare(root)
	root.SetArgs(args)
	root.SilenceUsage, root.SilenceErrors = true, true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &ExitError{Code: ExitUsage, Err: flagError(err)} })
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var ee *ExitError
	if !errors.As(err, &ee) && cobraUsage.MatchString(err.Error()) {
		ee = &ExitError{Code: ExitUsage, Err: err}
		if m := requiredFlags.FindStringSubmatch(err.Error()); m != nil {
			ee.Err = fmt.Errorf("missing required flag(s): %s", flagList(m[1]))
		}
		err = ee
	}
	if ee == nil {
		ee = &ExitError{Code: ExitFailure, Err: err}
	}
	if !ee.Reported {
		msg := err.Error()
		fmt.Fprintf(root.ErrOrStderr(), "%s: %s\n", root.Name(), msg)
		switch {
		case ee.Code == ExitUsage && cmd != nil && len(args) == 0 && (isCommandLineError(err) || errors.Is(err, errNoCommand)):
			// Run bare: the usage, on stderr, is the answer (as cobra tools commonly do).
			fmt.Fprintf(root.ErrOrStderr(), "\n%s", cmd.UsageString())
		case ee.Code == ExitUsage && cmd != nil && !strings.Contains(msg, "--help") && isCommandLineError(err):
			fmt.Fprintf(root.ErrOrStderr(), "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	}
	return ee.Code
}

// Prepare completes root's tree as it runs, so that the generated reference (cmd/internal/clidocs) matches
// it: the help and completion commands are added, and a command that only groups others ("completion")
// refuses an argument that names none of them (cobra would print its help and exit 0).
func Prepare(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c != root && !c.Runnable() && c.HasSubCommands() {
			c.Args = cobra.NoArgs
			c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// flagError words a bad flag value's error as "--flag VALUE …" when the value's own error says what
// is wrong and what to write (a duration: the forms and the range); pflag's generic wording otherwise.
func flagError(err error) error {
	var ive *pflag.InvalidValueError
	var de *duration.Error
	if errors.As(err, &ive) && errors.As(err, &de) {
		return fmt.Errorf("--%s %w", ive.GetFlag().Name, de)
	}
	return err
}

// isCommandLineError reports whether err is about the command line itself (not a config file).
func isCommandLineError(err error) bool {
	s := err.Error()
	return cobraUsage.MatchString(s) || strings.HasPrefix(s, "missing required flag")
}

// flagList turns cobra's `"a", "b"` into `--a, --b`.
func flagList(quoted string) string {
	var out []string
	for _, f := range strings.Split(quoted, ", ") {
		out = append(out, "--"+strings.Trim(f, `"`))
	}
	return strings.Join(out, ", ")
}

// MissingFlags returns a usage error listing every flag of names that is empty in values, all at once,
// or nil when none is.
func MissingFlags(names []string, values []string) error {
	var missing []string
	for i, n := range names {
		if values[i] == "" {
			missing = append(missing, "--"+n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return Usagef("missing required flag(s): %s", strings.Join(missing, ", "))
}

// errNoCommand is the error of a root that only groups commands, run without one.
var errNoCommand = errors.New("a command is required: pick one of those listed below")

// VersionString is the one version line of every binary: "NAME VERSION (commit C, built with GO)".
func VersionString(name string) string {
	return fmt.Sprintf("%s %s (commit %s, built with %s)", name, buildinfo.Version(), buildinfo.Commit(), runtime.Version())
}

// AddVersion gives root a --version flag and a version command, both printing VersionString(name) on
// stdout. It is done by hand: cobra's Command.Version makes a binary 2.5 MB larger. A root without a
// RunE of its own, run without a command, is a usage error (exit 2, the usage on stderr); --help and the
// help command still print the help on stdout and exit 0.
func AddVersion(root *cobra.Command, name string) {
	version := root.Flags().Bool("version", false, "print the version and commit this binary was built from, and exit")
	run := root.RunE
	root.RunE = func(cmd *cobra.Command, a []string) error {
		if *version {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), VersionString(name))
			return err
		}
		if run == nil {
			// A missing command is a usage error, as for cobra tools generally: Execute prints the
			// usage on stderr (stdout may be a pipe expecting output) and the exit status is 2.
			return &ExitError{Code: ExitUsage, Err: errNoCommand}
		}
		return run(cmd, a)
	}
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version and commit this binary was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), VersionString(name))
			return err
		},
	})
}
