// Command rolesanywhere-emulator runs a local AWS IAM Roles Anywhere and STS that verify requests as AWS
// does and issue working credentials: for demos (the docker-compose example), CI, and your own tests.
//
//	rolesanywhere-emulator --config emulator.hcl [--listen 127.0.0.1:8443] [--allowed-hosts emulator]
//	rolesanywhere-emulator init DIR   a CA, a leaf and its key, a config: a walkthrough without SPIRE
//
// Point the bridge's `endpoint` (plain http to loopback needs no `insecure_endpoint`) and your SDK's STS
// endpoint at its URL.
// Like every server of the bridge it refuses requests from web pages and requests whose Host does not
// name the address it listens on: when clients reach it by another name (a compose service name, say),
// list that name with --allowed-hosts.
// Control endpoints for tests: POST /_emulator/fail?n=&status=&type=, /_emulator/latency?d=,
// /_emulator/clock?now=, GET /_emulator/stats.
package main

//go:generate go test -run TestCLIReferenceIsCurrent -update-cli-docs .

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/emulator"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/cli"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/duration"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/netutil"
)

const name = "rolesanywhere-emulator"

// logLevels are the values --log-level accepts.
var logLevels = []string{"trace", "debug", "info", "warn", "error"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newCommand()
	root.SetOut(os.Stdout)
	root.SetErr(os.Stderr)
	code := cli.Execute(ctx, root, os.Args[1:])
	stop()
	os.Exit(code)
}

func newCommand() *cobra.Command {
	var (
		configPath, listen, logLevel, failType, now string
		allowRemote                                 bool
		allowedHosts                                []string
		failNext, failStatus                        int
		latency                                     = duration.NewValue("0s", duration.Range{Example: "500ms"})
	)
	cmd := &cobra.Command{
		Use:   "rolesanywhere-emulator --config FILE",
		Short: "A local IAM Roles Anywhere + STS that verifies signatures as AWS does",
		Long: `A local IAM Roles Anywhere (CreateSession) and STS (GetCallerIdentity, AssumeRole,
AssumeRoleWithWebIdentity) that verify requests as AWS does and issue credentials that work against its
own STS: for demos, CI and your own tests. Profiles model trusted identity propagation (the origin
identity), attribute mappings and session policies; trust policies take conditions on any key. It prints
its URL on stdout when it is ready.

Exit status: 0 after SIGTERM or SIGINT, 1 on a runtime failure, 2 on a usage or configuration error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return cli.Usagef("missing required flag(s): --config (the emulator's HCL configuration)")
			}
			if !slices.Contains(logLevels, logLevel) {
				return cli.Usagef("--log-level %q is not a log level: use one of %s", logLevel, strings.Join(logLevels, ", "))
			}
			if _, err := netutil.CheckBind(listen, allowRemote); err != nil {
				if _, _, splitErr := net.SplitHostPort(listen); splitErr != nil {
					return cli.Usagef("--listen %q: want host:port, e.g. 127.0.0.1:8443: %w", listen, splitErr)
				}
				return cli.Usagef("--listen %q is not a loopback address: add --allow-remote to listen on it", listen)
			}
			if err := netutil.ValidateAllowedHosts(allowedHosts); err != nil {
				return cli.Usagef("--allowed-hosts: %w", err)
			}
			if failStatus < 400 || failStatus > 599 {
				return cli.Usagef("--fail-status %d is not an HTTP error status: use 400 to 599", failStatus)
			}
			if failNext < 0 {
				return cli.Usagef("--fail-next %d is negative: give how many CreateSession calls to fail, e.g. 3", failNext)
			}
			cfg, err := emulator.LoadConfig(configPath)
			if err != nil {
				return cli.Usage(err)
			}
			log := hclog.New(&hclog.LoggerOptions{Name: "emulator", Level: hclog.LevelFromString(logLevel), Output: os.Stderr})
			opts := emulator.Options{Config: cfg, Addr: listen, AllowRemote: allowRemote, AllowedHosts: allowedHosts, Logger: log}
			if now != "" {
				t, err := time.Parse(time.RFC3339, now)
				if err != nil {
					return cli.Usagef("--now %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z: %w", now, err)
				}
				opts.Clock = func() time.Time { return t }
			}
			ctx := cmd.Context()
			srv, err := emulator.NewServer(opts)
			if err != nil {
				return err
			}
			if failNext > 0 {
				srv.FailNext(failNext, failStatus, failType)
			}
			srv.SetLatency(latency.Duration())
			fmt.Fprintln(cmd.OutOrStdout(), srv.URL)
			<-ctx.Done()
			log.Info("shutting down")
			return srv.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "emulator configuration (HCL)")
	f.StringVar(&listen, "listen", "127.0.0.1:8443", "address to listen on (plain HTTP)")
	f.BoolVar(&allowRemote, "allow-remote", false, "allow a non-loopback --listen address")
	f.StringSliceVar(&allowedHosts, "allowed-hosts", nil,
		`Host accepted besides the --listen address: "name" (any port) or "name:port"; repeatable; "*" turns the Host check off`)
	f.StringVar(&logLevel, "log-level", "info", "trace, debug, info, warn or error")
	f.IntVar(&failNext, "fail-next", 0, "fail the first N CreateSession requests (fault injection)")
	f.IntVar(&failStatus, "fail-status", 500, "HTTP status of injected faults")
	f.StringVar(&failType, "fail-type", "InternalServerException", "x-amzn-ErrorType of injected faults")
	f.Var(latency, "latency", "latency added to every answer, e.g. 500ms")
	f.StringVar(&now, "now", "", "freeze the emulator's clock at this RFC 3339 time (replaying recorded requests)")
	cmd.AddCommand(newInitCommand())
	cli.AddVersion(cmd, name)
	return cmd
}
