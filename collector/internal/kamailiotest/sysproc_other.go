//go:build !linux

package kamailiotest

import (
	"os/exec"
	"syscall"
	"time"
)

const supported = false

func sysProcAttr() *syscall.SysProcAttr { return nil }

func stopGroup(cmd *exec.Cmd, done <-chan struct{}) {
	_ = cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(stopTimeout):
	}
}
