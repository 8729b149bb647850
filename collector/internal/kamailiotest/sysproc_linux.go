package kamailiotest

import (
	"os/exec"
	"syscall"
	"time"
)

const supported = true

// sysProcAttr puts Kamailio in its own process group, killed with the
// test binary.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// stopGroup sends SIGTERM to cmd's process group, SIGKILL when it has not
// exited within stopTimeout, and waits for done, the end of cmd.Wait.
func stopGroup(cmd *exec.Cmd, done <-chan struct{}) {
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(stopTimeout):
		}
	}
	// Children that outlived the main process.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}
