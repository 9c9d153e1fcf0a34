//go:build tools

// Package tools pins spire-controller-manager so that `go build github.com/spiffe/spire-controller-manager/cmd`
// builds the release's main package with the release's own dependency versions.
package tools

import _ "github.com/spiffe/spire-controller-manager/cmd"
