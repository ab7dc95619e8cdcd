package redisbreaker

import "syscall"

// serverAttr makes a test's redis-server die with the test binary, even
// when the binary is killed before its cleanup runs.
func serverAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
