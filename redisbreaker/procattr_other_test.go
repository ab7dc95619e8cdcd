//go:build !linux

package redisbreaker

import "syscall"

func serverAttr() *syscall.SysProcAttr { return nil }
