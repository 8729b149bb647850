//go:build unix

package config

import (
	"os"
	"slices"
	"syscall"
)

// readThroughGroup reports whether this process reads the file of st
// through its group permission: another user owns it and its group is one
// of the process's.
func readThroughGroup(st os.FileInfo) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || int(sys.Uid) == os.Geteuid() {
		return false
	}
	if int(sys.Gid) == os.Getegid() {
		return true
	}
	groups, err := os.Getgroups()
	return err == nil && slices.Contains(groups, int(sys.Gid))
}
