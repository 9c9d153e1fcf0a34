//go:build !linux

package podidentity

import "errors"

// EnsureAddresses adds the listen addresses to the host on Linux only; elsewhere set
// pod_identity.interface = "" and add them yourself.
func EnsureAddresses(iface string, listen []string) (link string, added []string, err error) {
	return "", nil, errors.New("adding addresses to an interface is supported on Linux only; set pod_identity.interface = \"\" and add them yourself")
}
