package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/cmd/internal/runcmd"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/daemon"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/cli"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/duration"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/podidentity/webhook"
)

// webhookFlags are the webhook command's flags.
type webhookFlags struct {
	o                     webhook.Options
	kubeconfig, logLevel  string
	logFormat             string
	expiration, caRecheck *duration.Value
}

func newWebhookCommand(stderr io.Writer) *cobra.Command {
	var f webhookFlags
	cmd := &cobra.Command{
		Use:   "webhook --service NAME --namespace NS (--tls-cert-file FILE --tls-key-file FILE | --self-signed)",
		Short: "Serve pod identity's mutating admission webhook (HTTPS)",
		Long: `Serve pod identity's mutating admission webhook, as the chart's webhook Deployment does. For each pod
the MutatingWebhookConfiguration sends (the chart's: namespaces and pods labelled
spiffe-aws-bridge.io/pod-identity=enabled), it adds a projected service-account token volume (audience
--audience, lifetime --token-expiration), mounted read-only at
` + webhook.MountPath + ` in every container and init container, and
the variables ` + webhook.EnvFullURI + ` (--credentials-uri) and
` + webhook.EnvTokenFile + ` (` + webhook.TokenPath() + `).
It leaves alone a pod labelled or annotated spiffe-aws-bridge.io/pod-identity=disabled, a container that
sets any AWS_CONTAINER_* credentials variable or mounts something at that directory, and what it injected
before.

TLS: --tls-cert-file and --tls-key-file (e.g. cert-manager's Secret; a renewal is picked up within 10s), or
--self-signed: the webhook keeps a CA in the Secret --ca-secret (created empty by the chart; every replica
shares it), serves a certificate from it for the Service's DNS names, and keeps the CA in the caBundle of
the MutatingWebhookConfiguration --webhook-config (checked every --ca-bundle-check).

Health: GET ` + webhook.HealthPath + ` on the same port answers 200 once the API server can call the webhook.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runWebhook(cmd, &f, stderr) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.o.Listen, "listen", webhook.DefaultListen, "host:port to serve HTTPS on")
	fl.StringVar(&f.o.Service, "service", "", "the webhook's Service name (required): its DNS names are the accepted Host and, self-signed, the certificate's names")
	fl.StringVar(&f.o.Namespace, "namespace", os.Getenv("POD_NAMESPACE"), "the Service's namespace (default: $POD_NAMESPACE)")
	fl.StringVar(&f.o.ClusterDomain, "cluster-domain", "cluster.local", "the cluster's DNS domain")
	fl.StringVar(&f.o.CertFile, "tls-cert-file", "", "PEM certificate chain to serve (with --tls-key-file)")
	fl.StringVar(&f.o.KeyFile, "tls-key-file", "", "PEM private key of --tls-cert-file")
	fl.BoolVar(&f.o.SelfSigned, "self-signed", false, "make and keep a CA in --ca-secret and put it into --webhook-config's caBundle")
	fl.StringVar(&f.o.CASecret, "ca-secret", "", "self-signed: the Secret (in --namespace) holding the shared CA")
	fl.StringVar(&f.o.WebhookConfig, "webhook-config", "", "self-signed: the MutatingWebhookConfiguration whose caBundle gets the CA")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "self-signed: kubeconfig file (default: the in-cluster service account)")
	f.caRecheck = duration.NewValue("1m", duration.Range{Min: time.Second, Example: "1m"})
	fl.Var(f.caRecheck, "ca-bundle-check", "self-signed: how often to check that the caBundle still holds the CA (at least 1s)")
	fl.StringVar(&f.o.Injection.Audience, "audience", webhook.DefaultAudience, "the projected token's audience: the node bridge's pod_identity audience")
	f.expiration = duration.NewValue("24h", duration.Range{Min: webhook.MinExpirationSeconds * time.Second, Example: "24h"})
	fl.Var(f.expiration, "token-expiration", "the projected token's lifetime (at least 10m; the kubelet renews it at 80%)")
	fl.StringVar(&f.o.Injection.CredentialsURI, "credentials-uri", webhook.DefaultCredentialsURI, "the value of "+webhook.EnvFullURI+": the node bridge's pod_identity address")
	fl.StringVar(&f.logLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	fl.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	_ = cmd.MarkFlagRequired("service")
	return cmd
}

// webhookLogLevels are the levels --log-level accepts, the config's log_level values.
var webhookLogLevels = []string{"trace", "debug", "info", "warn", "error"}

func runWebhook(cmd *cobra.Command, f *webhookFlags, stderr io.Writer) error {
	switch {
	case !slices.Contains(webhookLogLevels, f.logLevel):
		return cli.Usagef("--log-level %q is not a log level: use one of %s", f.logLevel, strings.Join(webhookLogLevels, ", "))
	case f.logFormat != "text" && f.logFormat != "json":
		return cli.Usagef("--log-format %q is not a log format: use text or json", f.logFormat)
	case f.o.Namespace == "":
		return cli.Usagef("--namespace is required (or $POD_NAMESPACE, from the downward API)")
	case f.o.SelfSigned && (f.o.CASecret == "" || f.o.WebhookConfig == ""):
		return cli.Usagef("--self-signed needs --ca-secret and --webhook-config")
	case f.o.SelfSigned && (f.o.CertFile != "" || f.o.KeyFile != ""):
		return cli.Usagef("--self-signed and --tls-cert-file/--tls-key-file exclude each other: choose one")
	case !f.o.SelfSigned && (f.o.CertFile == "" || f.o.KeyFile == ""):
		return cli.Usagef("give --tls-cert-file and --tls-key-file, or --self-signed")
	}
	f.o.Injection.ExpirationSeconds = int64(f.expiration.Duration() / time.Second)
	f.o.CABundleCheck = f.caRecheck.Duration()
	if _, err := webhook.NewInjection(f.o.Injection); err != nil {
		return cli.Usage(err)
	}
	log := daemon.NewLogger(stderr, f.logLevel, f.logFormat)
	f.o.Logger = log
	if f.o.SelfSigned {
		c, err := webhook.NewKubeClient(f.kubeconfig)
		if err != nil {
			return runcmd.Fatal(log, err)
		}
		f.o.Client = c
	}
	s, err := webhook.NewServer(cmd.Context(), f.o)
	if err != nil {
		return runcmd.Fatal(log, fmt.Errorf("starting: %w", err))
	}
	<-cmd.Context().Done()
	log.Info("stopping")
	return s.Close()
}
