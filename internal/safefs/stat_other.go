//go:build unix && !linux

package safefs

// oPath is Linux's O_PATH; elsewhere every directory on a path must be readable.
const oPath = 0
