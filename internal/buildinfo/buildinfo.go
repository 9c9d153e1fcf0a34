// Package buildinfo reports the version and commit a binary was built from.
//
// Release builds set them with
//
//	-ldflags "-X github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/buildinfo.version=v1.2.3
//	          -X github.com/spiffe-aws-bridge/spiffe-aws-bridge/internal/buildinfo.commit=abc1234"
//
// and a plain `go build` falls back to the VCS stamp Go records, or "dev".
package buildinfo

import "runtime/debug"

// Set by -ldflags -X at release build time.
var (
	version = ""
	commit  = ""
)

// Version is the release version, "dev" for an unstamped build.
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Commit is the source commit, "unknown" when neither -ldflags nor the VCS stamp recorded one.
func Commit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// UserAgent is the User-Agent the bridge sends to AWS: "spiffe-aws-bridge/<version>".
func UserAgent() string { return "spiffe-aws-bridge/" + Version() }
