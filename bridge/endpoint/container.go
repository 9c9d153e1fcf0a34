package endpoint

import (
	"crypto/subtle"
	"fmt"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/creds"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/netutil"
	"github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/safefs"
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
	// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE points at). Required. It is opened without following symbolic
	// links and must be owned by root, the bridge's user or TokenOwner and not be writable by other users
	// or an untrusted group (internal/safefs's rules, also for its directories); nor may anyone but its
	// owner read or write it, except TokenGroup (or, with none set, root's or the bridge's group when
	// TokenMode is group-readable): the token is the credentials. If it does not exist, it
	// is created atomically with a random token, TokenOwner, TokenGroup and TokenMode (its directories, if
	// missing, mode 0700 or 0750). The endpoint looks at the file again at most once a second when
	// requests come in and re-reads it when it changed, so the token can be rotated without a restart; a
	// deleted file is created afresh; while the file is unusable (refused, empty) every request fails with
	// HTTP 500 naming the problem.
	AuthTokenFile string
	// TokenOwner, when set, owns a created token file and its directories, and is trusted as the owner
	// of an existing one. Giving files to another user needs root.
	TokenOwner safefs.ID
	// TokenGroup, when set, is the group of a created token file and its directories, and is trusted as
	// the group of group-writable ones.
	TokenGroup safefs.ID
	// TokenMode is the mode of a created token file: 0600 (the default when zero), 0640 or 0660.
	TokenMode fs.FileMode
	// FollowSymlinks resolves symbolic links in AuthTokenFile instead of refusing them: only links owned
	// by root or the bridge's user, where no one else can write (safefs.Resolve).
	FollowSymlinks bool
	// AllowSharedDirectory accepts directories on AuthTokenFile's path that other users can write (a
	// disk-backed Kubernetes emptyDir; a memory-backed one is sticky and needs no flag): only when every user who can write there is trusted.
	AllowSharedDirectory bool
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
	// TokenOwnerName, when set, is the user name TokenOwner was looked up from (auth_token_owner =
	// "app", or node mode's unix:user:NAME selector). It is looked up again whenever the endpoint looks at
	// the token file: when the account was re-created with another uid (its old uid may belong to someone
	// else now) an ERROR names the user and both uids, and the file the old uid owns is refused, so the
	// endpoint fails closed until the operator removes it; a user that no longer exists fails it closed too.
	TokenOwnerName string
	// LookupOwner resolves TokenOwnerName; default safefs.LookupOwner (the system's user database).
	LookupOwner func(name string) (safefs.ID, error)
	// Conns is the connection budget shared with the process's other servers (netutil.ServerOptions.Conns);
	// default: one of the server's own.
	Conns *netutil.ConnLimit
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
	if !filepath.IsAbs(o.AuthTokenFile) {
		return nil, fmt.Errorf("%s: auth_token_file %q is not an absolute path", nameContainer, o.AuthTokenFile)
	}
	rules := safefs.Rules{
		Owner: o.TokenOwner, Group: o.TokenGroup, Mode: o.TokenMode,
		FollowSymlinks: o.FollowSymlinks, AllowSharedDirectory: o.AllowSharedDirectory,
	}
	if err := rules.Check(); err != nil {
		return nil, fmt.Errorf("%s: auth token file %s: %w", nameContainer, o.AuthTokenFile, err)
	}
	s, err := newServer(common{name: nameContainer, addr: o.Addr, allowRemote: o.AllowRemote, allowedHosts: o.AllowedHosts,
		logger: o.Logger, clock: o.Clock, onRequest: o.OnRequest, conns: o.Conns})
	if err != nil {
		return nil, err
	}
	tokens, err := newTokenFile(filepath.Clean(o.AuthTokenFile), rules, s.log, tokenOwner{name: o.TokenOwnerName, lookup: o.LookupOwner})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", nameContainer, err)
	}
	s.path, s.tokenFile = o.Path, o.AuthTokenFile
	s.inner = s.wrap(&containerHandler{s: s, tokens: tokens})
	return s, nil
}

// TokenFile is the authorization token file of a container endpoint ("" for IMDS).
func (s *Server) TokenFile() string { return s.tokenFile }

// containerHandler serves the container credentials document.
type containerHandler struct {
	s      *Server
	tokens *tokenFile
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
	token, err := h.tokens.current()
	if err != nil { // fail closed: no token that can be trusted, no credentials
		writeJSON(w, http.StatusInternalServerError, errorDoc{
			Code:    "AuthTokenUnavailable",
			Message: "the endpoint's authorization token file cannot be used: " + err.Error(),
		})
		return
	}
	got := r.Header.Get("Authorization")
	if got == "" || subtle.ConstantTimeCompare([]byte(got), token) != 1 {
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
	WriteContainerCredentials(w, st.creds)
}

// WriteContainerCredentials answers a container-credentials request with c: 200 and the JSON document
// AWS SDKs read through AWS_CONTAINER_CREDENTIALS_FULL_URI. It is the only place the secret goes out.
func WriteContainerCredentials(w http.ResponseWriter, c creds.Credentials) {
	writeJSON(w, http.StatusOK, containerCredentials{
		AccessKeyId:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		Token:           c.SessionToken,
		Expiration:      c.Expiration.UTC().Format(time.RFC3339),
		RoleArn:         c.AssumedRoleARN,
	})
}

// WriteError answers with status and the JSON error document SDKs show: {"Code": code, "Message":
// message}. The message must hold no secret.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, errorDoc{Code: code, Message: message})
}
