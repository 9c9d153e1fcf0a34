package safefs

import "golang.org/x/sys/unix"

// oPath opens a directory with search permission only (Linux's O_PATH).
const oPath = unix.O_PATH
