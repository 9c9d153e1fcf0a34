package endpoint

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultContainerPath is the container credentials path used when ContainerOptions.Path is empty.
const DefaultContainerPath = "/v1/credentials"

// ContainerOptions configures a container credentials endpoint.
type ContainerOptions struct {
	// Addr is the host:port to bind, e.g. "127.0.0.1:9912"; port 0 picks an ephemeral port.
	Addr string
	// Path is the URL path credentials are served on; default DefaultContainerPath. Must start with "/".
	Path string
	// AuthTokenFile holds the token clients must send in the Authorization header (the file
	// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE points at). Required. If it does not exist, it is created
	// with a random token, mode 0600 (its directory, if missing, mode 0700). It is read once, by
	// NewContainer: changing it later requires a new server.
	AuthTokenFile string
	// AllowRemote must be set to bind a non-loopback address.
	AllowRemote bool
	// Logger receives one Debug line per request and warnings; default: a null logger.
	Logger hclog.Logger
	// Clock is the time source for credential validity; default time.Now.
	Clock func() time.Time
	// OnRequest, if set, is called after each request with the response status code.
	OnRequest func(status int)
	// AllowedHosts are Host values accepted besides the bound address (netutil.ServerOptions.AllowedHosts);
	// requests naming any other host, and requests from web pages, are refused with 403.
	AllowedHosts []string
}

// NewContainer returns a container credentials endpoint (not yet started): GET on Path with the
// authorization token in the Authorization header returns the credentials document AWS SDKs read
// through AWS_CONTAINER_CREDENTIALS_FULL_URI.
func NewContainer(o ContainerOptions) (*Server, error) {
	if o.Path == "" {
		o.Path = DefaultContainerPath
	}
	if !strings.HasPrefix(o.Path, "/") {
		return nil, fmt.Errorf("%s: path %q must start with /", nameContainer, o.Path)
	}
	if o.AuthTokenFile == "" {
		return nil, fmt.Errorf("%s: auth_token_file is required", nameContainer)
	}
	s, err := newServer(nameContainer, o.Addr, o.AllowRemote, o.AllowedHosts, o.Logger, o.Clock, o.OnRequest)
	if err != nil {
		return nil, err
	}
	token, err := loadOrCreateToken(o.AuthTokenFile, s.log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", nameContainer, err)
	}
	s.path, s.tokenFile = o.Path, o.AuthTokenFile
	s.inner = s.wrap(&containerHandler{s: s, token: []byte(token)})
	return s, nil
}

// TokenFile is the authorization token file of a container endpoint ("" for IMDS).
func (s *Server) TokenFile() string { return s.tokenFile }

// loadOrCreateToken reads the token in path, or creates path with a fresh random token.
func loadOrCreateToken(path string, log hclog.Logger) (string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createToken(path, log)
	}
	if err != nil {
		return "", fmt.Errorf("read auth token file: %w", err)
	}
	return checkToken(path, b, log)
}

func checkToken(path string, b []byte, log hclog.Logger) (string, error) {
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("auth token file %s is empty", path)
	}
	if strings.ContainsAny(tok, "\r\n") {
		return "", fmt.Errorf("auth token file %s must hold a single line", path)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("auth token file is readable by other users", "path", path, "mode", fi.Mode().Perm().String())
	}
	return tok, nil
}

// createToken writes a random token (32 bytes, hex) to a new file at path, mode 0600.
func createToken(path string, log hclog.Logger) (string, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("create auth token directory: %w", err)
		}
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate auth token: %w", err)
	}
	tok := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // created concurrently: use it
		b, rerr := os.ReadFile(path)
		if rerr != nil {
			return "", fmt.Errorf("read auth token file: %w", rerr)
		}
		return checkToken(path, b, log)
	}
	if err != nil {
		return "", fmt.Errorf("create auth token file: %w", err)
	}
	if _, err := f.WriteString(tok); err != nil {
		f.Close()
		os.Remove(path)
		return "", fmt.Errorf("write auth token file: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("write auth token file: %w", err)
	}
	log.Info("created container endpoint auth token file", "path", path)
	return tok, nil
}

// containerHandler serves the container credentials document.
type containerHandler struct {
	s     *Server
	token []byte
}

// containerCredentials is the container credentials document.
type containerCredentials struct {
	AccessKeyId     string //nolint:revive // wire name fixed by AWS
	SecretAccessKey string
	Token           string
	Expiration      string
	RoleArn         string `json:",omitempty"` //nolint:revive // wire name
}

func (h *containerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != h.s.path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		methodNotAllowed(w, "GET")
		return
	}
	got := r.Header.Get("Authorization")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), h.token) != 1 {
		writeJSON(w, http.StatusUnauthorized, errorDoc{
			Code:    "Unauthorized",
			Message: "missing or wrong authorization token",
		})
		return
	}
	st, ok := h.s.valid()
	if !ok {
		writeNoCredentials(w)
		return
	}
	writeJSON(w, http.StatusOK, containerCredentials{
		AccessKeyId:     st.creds.AccessKeyID,
		SecretAccessKey: st.creds.SecretAccessKey,
		Token:           st.creds.SessionToken,
		Expiration:      st.creds.Expiration.UTC().Format(time.RFC3339),
		RoleArn:         st.creds.AssumedRoleARN,
	})
}
