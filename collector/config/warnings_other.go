//go:build !unix

package config

import "os"

// readThroughGroup is false where files have no Unix owner and group.
func readThroughGroup(os.FileInfo) bool { return false }
