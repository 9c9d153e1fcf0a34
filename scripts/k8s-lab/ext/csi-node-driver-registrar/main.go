// Command csi-node-driver-registrar is the lab's stand-in for kubernetes-csi/node-driver-registrar
// (which the Go module proxy here does not serve): it registers a CSI driver with the kubelet through the
// kubelet's plugin-registration protocol (k8s.io/kubelet/pkg/apis/pluginregistration/v1).
//
// It asks the CSI driver at --csi-address for its name (CSI Identity GetPluginInfo, retried until the
// driver answers), then serves the Registration service on <plugin-registration-path>/<name>-reg.sock,
// where the kubelet's plugin watcher finds it: GetInfo answers type CSIPlugin, the driver's name, the
// endpoint --kubelet-registration-path and versions ["1.0.0"]; NotifyRegistrationStatus logs the
// kubelet's verdict. On SIGTERM/SIGINT it removes its socket, which deregisters the driver.
//
// Flags are the real registrar's names for the ones the lab uses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	csi "github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

type registrar struct {
	registerapi.UnimplementedRegistrationServer
	name     string
	endpoint string
	versions []string
}

// GetInfo tells the kubelet which CSI driver this is and where its socket is.
func (r *registrar) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	log.Printf("GetInfo: type %s, name %q, endpoint %q, versions %q", registerapi.CSIPlugin, r.name, r.endpoint, r.versions)
	return &registerapi.PluginInfo{
		Type:              registerapi.CSIPlugin,
		Name:              r.name,
		Endpoint:          r.endpoint,
		SupportedVersions: r.versions,
	}, nil
}

// NotifyRegistrationStatus logs whether the kubelet registered the driver.
func (r *registrar) NotifyRegistrationStatus(_ context.Context, s *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	if s.PluginRegistered {
		log.Printf("the kubelet registered CSI driver %q", r.name)
	} else {
		log.Printf("the kubelet refused CSI driver %q: %s", r.name, s.Error)
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}

// driverName asks the CSI driver at addr for its name, retrying until ctx ends.
func driverName(ctx context.Context, addr string) (string, error) {
	conn, err := grpc.NewClient("unix://"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", fmt.Errorf("CSI driver at %s: %w", addr, err)
	}
	defer conn.Close()
	id := csi.NewIdentityClient(conn)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := id.GetPluginInfo(cctx, &csi.GetPluginInfoRequest{})
		cancel()
		if err == nil {
			if resp.GetName() == "" {
				return "", fmt.Errorf("CSI driver at %s: GetPluginInfo returned an empty name", addr)
			}
			return resp.GetName(), nil
		}
		log.Printf("waiting for the CSI driver at %s: %v", addr, err)
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("CSI driver at %s: %w (last error: %v)", addr, ctx.Err(), err)
		case <-time.After(time.Second):
		}
	}
}

func run() error {
	csiAddr := flag.String("csi-address", "/run/csi/socket", "the CSI driver's socket (asked for the driver's name)")
	kubeletPath := flag.String("kubelet-registration-path", "", "the CSI driver's socket as the kubelet sees it (the endpoint GetInfo returns)")
	regDir := flag.String("plugin-registration-path", "/registration", "the kubelet's plugin registration directory (plugins_registry)")
	timeout := flag.Duration("timeout", 2*time.Minute, "how long to wait for the CSI driver to answer GetPluginInfo")
	flag.Parse()
	if *kubeletPath == "" {
		return errors.New("--kubelet-registration-path is required")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	wctx, cancel := context.WithTimeout(ctx, *timeout)
	name, err := driverName(wctx, *csiAddr)
	cancel()
	if err != nil {
		return err
	}

	sock := filepath.Join(*regDir, name+"-reg.sock")
	if err := os.MkdirAll(*regDir, 0o755); err != nil {
		return fmt.Errorf("plugin registration directory %s: %w", *regDir, err)
	}
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stale registration socket %s: %w", sock, err)
	}
	lis, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("registration socket %s: %w", sock, err)
	}
	defer os.Remove(sock)

	srv := grpc.NewServer()
	registerapi.RegisterRegistrationServer(srv, &registrar{name: name, endpoint: *kubeletPath, versions: []string{"1.0.0"}})
	log.Printf("serving the kubelet's Registration service for %q on %s (endpoint %s)", name, sock, *kubeletPath)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case <-ctx.Done():
		log.Printf("stopping: removing %s", sock)
		srv.GracefulStop()
		return nil
	case err := <-errc:
		return fmt.Errorf("registration socket %s: %w", sock, err)
	}
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	if err := run(); err != nil {
		log.Fatal(err)
	}
}
