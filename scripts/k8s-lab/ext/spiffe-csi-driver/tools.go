//go:build tools

// Package tools pins spiffe-csi v0.2.6 (its cmd/spiffe-csi-driver is the CSI driver).
package tools

import _ "github.com/spiffe/spiffe-csi/cmd/spiffe-csi-driver"
