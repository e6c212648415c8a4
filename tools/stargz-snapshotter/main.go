// podstart-stargz-snapshotter serves stargz-snapshotter's lazy-pulling snapshotter to containerd
// as a proxy snapshotter ([proxy_plugins.stargz] in containerd's config) over a unix socket.
//
// Debian packages stargz-snapshotter's library (golang-github-containerd-stargz-snapshotter-dev)
// but not its daemon, so podstart builds this small one over the library with Debian's Go alone
// (scripts/install-deps.sh). It keeps to the parts of the library whose imports Debian 12 ships:
// the in-memory metadata store (the bbolt one needs goccy/go-json) and docker-config credentials
// (the kubeconfig and CRI keychains need k8s.io/client-go and k8s.io/cri-api).
//
// SIGINT or SIGTERM stops it: it stops serving, then closes the snapshotter, which unmounts every
// FUSE filesystem it mounted. A socket left by a daemon that died is removed before listening.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/contrib/snapshotservice"
	"github.com/containerd/containerd/log"
	stargzfs "github.com/containerd/stargz-snapshotter/fs"
	memorymetadata "github.com/containerd/stargz-snapshotter/metadata/memory"
	"github.com/containerd/stargz-snapshotter/service"
	"github.com/containerd/stargz-snapshotter/service/keychain/dockerconfig"
	"github.com/containerd/stargz-snapshotter/service/resolver"
	"github.com/pelletier/go-toml"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
)

func main() {
	address := flag.String("address", "/run/podstart-stargz/stargz.sock", "unix socket to serve the snapshots API on")
	root := flag.String("root", "/var/lib/podstart-stargz", "directory for snapshots, FUSE mounts and caches")
	configPath := flag.String("config", "", "stargz-snapshotter TOML config (the [fuse], [blob], [resolver] ... tables of upstream's config.toml); empty for the defaults")
	logLevel := flag.String("log-level", "info", "logrus level: debug, info, warn, error")
	flag.Parse()

	if err := run(*address, *root, *configPath, *logLevel); err != nil {
		fmt.Fprintf(os.Stderr, "podstart-stargz-snapshotter: %v\n", err)
		os.Exit(1)
	}
}

func run(address, root, configPath, logLevel string) error {
	level, err := logrus.ParseLevel(logLevel)
	if err != nil {
		return fmt.Errorf("-log-level %q: %w", logLevel, err)
	}
	logrus.SetLevel(level)
	logrus.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	ctx := log.WithLogger(context.Background(), logrus.NewEntry(logrus.StandardLogger()))

	var config service.Config
	if configPath != "" {
		text, err := os.ReadFile(configPath)
		if err != nil {
			return fmt.Errorf("reading the config: %w", err)
		}
		if err := toml.Unmarshal(text, &config); err != nil {
			return fmt.Errorf("config %s is not valid TOML for the snapshotter: %w", configPath, err)
		}
	}
	if config.KubeconfigKeychainConfig.EnableKeychain || config.CRIKeychainConfig.EnableKeychain {
		return fmt.Errorf("config %s enables a kubeconfig or CRI keychain; this build has only docker-config credentials (~/.docker/config.json)", configPath)
	}

	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("creating the root %s: %w", root, err)
	}
	if err := service.Supported(root); err != nil {
		return fmt.Errorf("the root %s cannot hold overlayfs snapshots: %w", root, err)
	}

	snapshotter, err := service.NewStargzSnapshotterService(ctx, root, &config,
		service.WithCredsFuncs(resolver.Credential(dockerconfig.NewDockerconfigKeychain(ctx))),
		service.WithFilesystemOptions(stargzfs.WithMetadataStore(memorymetadata.NewReader)))
	if err != nil {
		return fmt.Errorf("starting the snapshotter: %w", err)
	}

	listener, err := listenUnix(address)
	if err != nil {
		snapshotter.Close()
		return err
	}
	server := grpc.NewServer()
	snapshotsapi.RegisterSnapshotsServer(server, snapshotservice.FromSnapshotter(snapshotter))

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	log.G(ctx).Infof("serving the stargz snapshotter on %s (root %s)", address, root)

	var serveErr error
	select {
	case sig := <-signals:
		log.G(ctx).Infof("%v: stopping", sig)
		server.Stop()
	case serveErr = <-served:
	}
	// Closing unmounts the FUSE filesystems; without it they stay mounted, and their processes hang.
	if err := snapshotter.Close(); err != nil {
		log.G(ctx).WithError(err).Warn("closing the snapshotter")
	}
	os.Remove(address)
	if serveErr != nil {
		return fmt.Errorf("serving on %s: %w", address, serveErr)
	}
	return nil
}

// listenUnix listens on a unix socket, replacing a socket file a previous daemon left behind. It
// refuses to replace anything that is not a socket, or a socket another daemon still answers on.
func listenUnix(address string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(address), 0o700); err != nil {
		return nil, fmt.Errorf("creating the socket's directory: %w", err)
	}
	if info, err := os.Lstat(address); err == nil {
		if info.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket; remove it or choose another -address", address)
		}
		if conn, err := net.Dial("unix", address); err == nil {
			conn.Close()
			return nil, fmt.Errorf("another process serves on %s; stop it first", address)
		}
		if err := os.Remove(address); err != nil {
			return nil, fmt.Errorf("removing the stale socket %s: %w", address, err)
		}
	}
	listener, err := net.Listen("unix", address)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", address, err)
	}
	return listener, nil
}
